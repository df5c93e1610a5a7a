"""The update package container, format 1: the host's writer and reader of what
lib/outstack/ota/package.py streams on the board (the byte layout is documented there).

    header (20 bytes, little-endian): b"OSOT", version 1, flags, manifest length u16,
        signature length u16, reserved u16 = 0, signing key id (8 bytes)
    manifest (JSON) | signature | module blobs in manifest order
    flags bit 0 (PACKED): the manifest on the wire is a zlib stream (window 1 KB) of the JSON;
        the signature is over the JSON, as ever (openssl signs the same file)
"""

import json
import struct
import zlib
from dataclasses import dataclass

from ..errors import CliError

MAGIC = b"OSOT"
FORMAT = 1
HEADER = struct.Struct("<4sBBHHH8s")
MAX_MANIFEST = 8192
NO_KEY = bytes(8)
PACKED = 1
WBITS = 10  # the board inflates with a 1 KB window


@dataclass
class Container:
    manifest: bytes
    signature: bytes
    kid: bytes
    blobs: bytes  # every module's blob, back to back
    packed: bool = True  # send the manifest as zlib when that is shorter (flag PACKED)

    def to_bytes(self) -> bytes:
        if not 0 < len(self.manifest) <= MAX_MANIFEST:
            raise CliError(f"the manifest is {len(self.manifest)} bytes: boards read up to "
                           f"{MAX_MANIFEST} (fewer modules per update)")
        c = zlib.compressobj(9, zlib.DEFLATED, WBITS)
        packed = c.compress(self.manifest) + c.flush()
        flags, wire = (PACKED, packed) if self.packed and len(packed) < len(self.manifest) \
            else (0, self.manifest)
        head = HEADER.pack(MAGIC, FORMAT, flags, len(wire), len(self.signature), 0,
                           self.kid if self.signature else NO_KEY)
        return head + wire + self.signature + self.blobs

    def fields(self) -> dict:
        return json.loads(self.manifest)

    def module_blobs(self) -> list[tuple[dict, bytes]]:
        out, at = [], 0
        for entry in self.fields().get("modules", []):
            out.append((entry, self.blobs[at:at + entry["zsize"]]))
            at += entry["zsize"]
        return out


def parse(data: bytes, where: str = "package") -> Container:
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise CliError(f"{where} is not an OTA update package (no {MAGIC!r} header)")
    magic, version, flags, mlen, slen, _res, kid = HEADER.unpack_from(data)
    if version != FORMAT:
        raise CliError(f"{where} is package format {version}; this tool reads format {FORMAT}")
    end = HEADER.size + mlen + slen
    if len(data) < end:
        raise CliError(f"{where} is truncated: {len(data)} bytes, its header promises {end}+")
    manifest = data[HEADER.size:HEADER.size + mlen]
    if flags & PACKED:
        try:
            manifest = zlib.decompress(manifest)
        except zlib.error as e:
            raise CliError(f"{where}: its packed manifest is damaged ({e})") from None
    return Container(manifest, data[HEADER.size + mlen:end], kid, data[end:])


def manifest_bytes(manifest: dict) -> bytes:
    """The exact bytes that are signed: compact, keys in a fixed order."""
    return json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
