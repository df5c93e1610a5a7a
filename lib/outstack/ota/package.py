# Read an update package from a stream in constant RAM: the header, manifest and signature
# first (verified before anything else is believed), then each module streamed in chunks
# through one preallocated buffer, inflated on the fly, its length and SHA-256 checked.
#
# Container, format 1 (integers little-endian):
#   offset  bytes
#   0       4   magic b"OSOT"
#   4       1   format version: 1
#   5       1   flags: bit 0 = the manifest is packed (a zlib stream, window <= 1 KB)
#   6       2   M, manifest length (1..8192), as stored
#   8       2   S, signature length (0: unsigned; else the signing key's modulus length)
#   10      2   reserved: 0
#   12      8   id of the signing key: SHA-256(modulus)[:8] (a hint; the signature decides)
#   20      M   manifest, UTF-8 JSON (see verify.py), or its zlib stream if packed
#   20+M    S   signature: RSA PKCS#1 v1.5, SHA-256, over the manifest's JSON bytes
#   20+M+S      each module's blob, `zsize` bytes, in manifest order; nothing after the last
#   A "zlib" blob is a zlib stream (RFC 1950) with a window of 1 KB or less; "none" is the bytes.
#
# For the installer:
#   with open(path, "rb") as f:
#       pkg = Package(f, size=os.stat(path)[6])   # OtaRejected: not a package, truncated
#       m = pkg.verify(policy)                     # OtaRejected: see verify.py
#       install(system, m["seq"], [(mod.rel, mod) for mod in pkg.modules()])
# Iterating a Module yields memoryviews of the shared buffer (use each before the next); the
# last step checks its length and SHA-256 and raises OtaRejected ("hash", "size", "truncated",
# "corrupt"), so a staged module is good only if its loop ended without an exception. Modules
# must be read (or .skip()ped) in manifest order: the stream is read once, front to back.
# A .mpy module replaces its .py twin: remove `mod.twin` in the stage, or the .py wins imports.
import deflate
import hashlib
import io
from micropython import const
from outstack.ota import verify
from outstack.ota.verify import OtaRejected

MAGIC = b"OSOT"
HEADER = const(20)
_FORMAT = const(1)
MAX_MANIFEST = const(8192)
_MAX_SIGNATURE = const(512)  # 4096-bit keys
CHUNK = const(1024)
_WBITS = const(10)  # inflate window: 1 KB of RAM, whatever a blob's zlib header asks for
_EINVAL = const(22)
_PACKED = const(1)


def _inflate(packed):
    # A packed manifest, inflated (before its signature is checked: bounded, and nothing of it
    # is believed until the signature over these JSON bytes holds).
    try:
        out = deflate.DeflateIO(io.BytesIO(packed), deflate.ZLIB, _WBITS).read(MAX_MANIFEST + 1)
    except (OSError, ValueError):
        raise OtaRejected("format", "the packed manifest is damaged")
    if not out or len(out) > MAX_MANIFEST:
        raise OtaRejected("size", "the packed manifest inflates to over %d bytes" % MAX_MANIFEST)
    return out


def _u16(b, at):
    return b[at] | b[at + 1] << 8


class Package:
    def __init__(self, stream, size=None, buf=None):
        self.s = stream  # blocking, with readinto (a file, socket, UART, BytesIO)
        self.size = size  # the package's length when known (a file): checked by verify()
        self.buf = buf or bytearray(CHUNK)  # the one buffer every module streams through
        self.mv = memoryview(self.buf)
        self.at = 0  # bytes read from the stream so far
        self.manifest = None  # the checked manifest, once verify() has passed
        self._next = 0  # the module whose blob comes next; -1: the stream position is lost
        head = self._read(bytearray(HEADER), "header")
        self.kid, mlen, slen = self._header(head)
        self.raw = self._read(bytearray(mlen), "manifest")
        if head[5] & _PACKED:
            self.raw = _inflate(self.raw)
        self.sig = self._read(bytearray(slen), "signature")

    def _header(self, h):
        if h[0:4] != MAGIC:
            raise OtaRejected("format", "not an update package: it does not start with %r" % MAGIC)
        if h[4] != _FORMAT or h[5] & ~_PACKED or h[10] or h[11]:
            raise OtaRejected("format", "package format %d, flags %d, reserved %d: this board "
                              "reads format %d, flag 1 only (update the framework)"
                              % (h[4], h[5], _u16(h, 10), _FORMAT))
        mlen, slen = _u16(h, 6), _u16(h, 8)
        if not 0 < mlen <= MAX_MANIFEST:
            raise OtaRejected("size", "manifest of %d bytes: 1 to %d allowed"
                              % (mlen, MAX_MANIFEST))
        if slen > _MAX_SIGNATURE:
            raise OtaRejected("size", "signature of %d bytes: keys up to 4096 bits" % slen)
        return bytes(h[12:20]), mlen, slen

    def _read(self, b, what):
        mv, got = memoryview(b), 0
        while got < len(b):
            n = self.s.readinto(mv[got:] if got else b)
            if not n:
                raise OtaRejected("truncated", "the package ends after %d bytes, in its %s"
                                  % (self.at + got, what))
            got += n
        self.at += got
        return b

    def verify(self, policy):
        """Check signature and manifest (verify.check): the manifest, or OtaRejected."""
        return self._sized(verify.check(self.raw, self.sig, self.kid, policy))

    async def verify_async(self, policy):
        """verify() that yields to the loop during the signature's math (the installer's)."""
        return self._sized(await verify.check_async(self.raw, self.sig, self.kid, policy))

    def _sized(self, m):
        need = self.at + sum(e["zsize"] for e in m["modules"])
        if self.size is not None and self.size != need:
            raise OtaRejected("truncated" if self.size < need else "size", "the package is %d "
                              "bytes; its manifest accounts for %d" % (self.size, need))
        self.manifest = m
        return m

    def modules(self):
        """The verified manifest's modules, in order: each a Module to iterate once."""
        if self.manifest is None:
            raise ValueError("verify() the package before reading its modules")
        return [Module(self, i, e) for i, e in enumerate(self.manifest["modules"])]

    def _chunks(self, mod):
        if self._next != mod.index:
            raise ValueError("modules must be read once each, in manifest order")
        self._next = -1  # until this module is read to its end
        e = mod.entry
        src, blob, start = self._source(e)
        h = hashlib.sha256()
        got = 0
        while True:
            n = self._fill(src, mod)
            if not n:
                break
            got += n
            if got > e["size"]:
                raise OtaRejected("size", "module %r is longer than the %d bytes its manifest "
                                  "declares" % (mod.name, e["size"]))
            chunk = self.mv if n == CHUNK else self.mv[:n]  # a whole chunk allocates nothing
            h.update(chunk)
            yield chunk
        used = blob.count if blob else self.s.tell() - start
        self._end(mod, used, got, h.digest())

    def _source(self, e):
        # (readable, byte counter or None, start): a file's own tell() says where a zlib
        # stream ended (inflate reads its source a byte at a time); other streams are counted.
        if e["enc"] == "none":
            blob = _Blob(self.s, e["zsize"])
            return blob, blob, 0
        if hasattr(self.s, "tell"):
            return deflate.DeflateIO(self.s, deflate.ZLIB, _WBITS), None, self.s.tell()
        blob = _Blob(self.s, e["zsize"])
        return deflate.DeflateIO(blob, deflate.ZLIB, _WBITS), blob, 0

    def _fill(self, src, mod):
        try:
            return src.readinto(self.buf) or 0
        except EOFError:
            raise OtaRejected("truncated", "module %r: its data stops before its zlib stream "
                              "ends (a truncated package?)" % mod.name)
        except OSError as e:
            if e.errno != _EINVAL:
                raise  # the link or the flash, not the package
            raise OtaRejected("corrupt", "module %r: its compressed data is damaged" % mod.name)

    def _end(self, mod, used, got, digest):
        e = mod.entry
        self.at += used
        if used != e["zsize"] or got != e["size"]:
            why = "truncated" if used < e["zsize"] and e["enc"] == "none" else "size"
            raise OtaRejected(why, "module %r is %d bytes (%d packed); its manifest says %d (%d)"
                              % (mod.name, got, used, e["size"], e["zsize"]))
        if not verify._same(digest, e["digest"]):
            raise OtaRejected("hash", "module %r: SHA-256 does not match the manifest (altered or "
                              "damaged on the way)" % mod.name)
        self._next = mod.index + 1


class _Blob(io.IOBase):
    # At most `left` bytes of the stream: a stored module, or a zlib blob of a stream
    # without tell(). .count is what was read.
    def __init__(self, stream, left):
        self.s = stream
        self.left = left
        self.count = 0

    def readinto(self, b):
        if self.left <= 0:
            return 0
        n = self.s.readinto(b if len(b) <= self.left else memoryview(b)[: self.left]) or 0
        self.left -= n
        self.count += n
        return n


class Module:
    # One module of a verified package: its manifest entry, and its bytes when iterated.
    def __init__(self, pkg, index, entry):
        self.pkg = pkg
        self.index = index
        self.entry = entry
        self.name = entry["name"]
        self.path = entry["path"]  # on the board, e.g. "/app/sensor.mpy"
        self.rel = self.path[1:]  # under a slot's root, e.g. "app/sensor.mpy"
        self.version = entry["version"]
        self.size = entry["size"]
        self.deps = entry["deps"]
        p = self.path
        self.twin = p[:-4] + ".py" if p.endswith(".mpy") else p[:-3] + ".mpy"

    def __iter__(self):
        return self.pkg._chunks(self)

    def skip(self):
        """Read past this module (checking it all the same): e.g. it is installed already."""
        for _ in self:
            pass
