"""Building an update package: module files -> compiled (or source) bytes -> zlib blobs ->
a manifest that names each module, its version, length and SHA-256 -> signed container.

Which module a file is: its path under the project's firmware folder (firmware/app/sensor.py
is `app.sensor`, at
/app/sensor.mpy on the board), or say it: `some/file.py=app/sensor.py`. Only modules inside
the board's module area (/app) can be updated."""

import ast
import hashlib
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..paths import LIB
from . import keys
from .container import Container, manifest_bytes

AREA = "/app"
WBITS = 10  # the board inflates with a 1 KB window (lib/outstack/ota/package.py)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
VERSION = re.compile(r"^\d+(\.\d+){0,3}$")


@dataclass
class Source:
    host: Path
    rel: str  # under the board's root, as a .py: "app/sensor.py"

    @property
    def name(self) -> str:
        name = self.rel[:-3].replace("/", ".")
        return name.removesuffix(".__init__")


def framework_version() -> str:
    return re.search(r'__version__ = "(.+)"', (LIB / "outstack/__init__.py").read_text())[1]


def sources(specs: list[str], area: str = AREA, firmware: Path | None = None) -> list[Source]:
    """The module files to pack; `firmware` (the project's) tells a file's module name."""
    out = [_source(spec, area, firmware) for spec in specs]
    seen: dict[str, str] = {}
    for s in out:
        if s.name in seen:
            raise CliError(f"{seen[s.name]} and {s.host} are the same module {s.name}")
        seen[s.name] = str(s.host)
    return out


def _source(spec: str, area: str, firmware: Path | None) -> Source:
    path, rel = spec, None
    if "=" in spec and spec.rsplit("=", 1)[1].endswith(".py"):
        path, rel = spec.rsplit("=", 1)
    host = Path(path)
    if not host.is_file():
        raise CliError(f"module file {path} does not exist")
    rel = rel or _rel_in_firmware(host, firmware)
    parts = rel.split("/")
    if (not rel.startswith(area.strip("/") + "/") or not rel.endswith(".py")
            or not all(NAME.match(p) for p in [*parts[:-1], parts[-1][:-3]])):
        raise CliError(f"{path}: {rel} is not a module in the board's module area {area} "
                       f"(like {area.strip('/')}/sensor.py)")
    return Source(host, rel)


def _rel_in_firmware(host: Path, firmware: Path | None) -> str:
    full = host.resolve()
    if firmware is not None and full.is_relative_to(firmware.resolve()):
        return full.relative_to(firmware.resolve()).as_posix()
    where = "the project's firmware folder" if firmware else "a project's firmware folder"
    raise CliError(f"cannot tell which module {host} is: it is not under {where}; name it as "
                   f"{host}=app/NAME.py")


def parse_depends(text: str | None, names: set[str]) -> dict[str, list[str]]:
    """'a:b,a:c' -> {"a": ["b", "c"]}: module a needs b and c (restarted after them)."""
    deps: dict[str, list[str]] = {}
    for pair in filter(None, (text or "").split(",")):
        a, sep, b = pair.strip().partition(":")
        if not sep or not all(NAME.match(p) for p in f"{a}.{b}".split(".")):
            raise CliError(f"--depends: {pair!r} is not MODULE:DEPENDENCY "
                           f"(like app.processing:app.sensor)")
        if a not in names:
            raise CliError(f"--depends: {a} is not a module of this update "
                           f"({', '.join(sorted(names))})")
        deps.setdefault(a, []).append(b)
    return deps


def module_version(src: Path, default: str) -> str:
    """The module's `__version__ = "..."` if it has one, else `default`."""
    try:
        tree = ast.parse(src.read_bytes())
    except SyntaxError:
        return default
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "__version__"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            return node.value.value
    return default


def module_bytes(src: Source, board: str, source: bool, work: Path) -> tuple[str, bytes]:
    """(board path, bytes written there): mpy-cross for the board's arch, or the source."""
    from ..stage import compile_mpy

    if source:
        return "/" + src.rel, src.host.read_bytes()
    board_path = "/" + src.rel[:-3] + ".mpy"
    target = work / src.rel.replace("/", "_")
    compile_mpy(src.host, target, boards.load(board)["ARCH"], board_path)
    return board_path, target.read_bytes()


def blob(data: bytes, compress: bool = True) -> tuple[str, bytes]:
    """(encoding, blob): zlib with the board's window, unless that is no smaller."""
    if compress:
        c = zlib.compressobj(9, zlib.DEFLATED, WBITS)
        z = c.compress(data) + c.flush()
        if len(z) < len(data):
            return "zlib", z
    return "none", data


def entry(name: str, path: str, version: str, data: bytes, enc: str, z: bytes,
          deps: list[str]) -> dict:
    return {"name": name, "path": path, "version": version, "size": len(data), "zsize": len(z),
            "enc": enc, "sha256": hashlib.sha256(data).hexdigest(), "deps": deps}


def build_modules(srcs: list[Source], board: str, source: bool, default_version: str,
                  deps: dict[str, list[str]], compress: bool = True):
    """(manifest entries, blobs back to back)."""
    entries, blobs = [], b""
    with tempfile.TemporaryDirectory(prefix="outstack-ota-") as work:
        for s in srcs:
            path, data = module_bytes(s, board, source, Path(work))
            enc, z = blob(data, compress)
            version = module_version(s.host, default_version)
            if not VERSION.match(version):
                raise CliError(f"{s.host}: __version__ {version!r} is not like 1.2.3")
            entries.append(entry(s.name, path, version, data, enc, z, deps.get(s.name, [])))
            blobs += z
    return entries, blobs


def update_manifest(board: str, seq: int, framework: str, entries: list[dict],
                    downgrade: bool = False) -> dict:
    m = {"v": 1, "type": "update", "board": board, "seq": seq, "framework": framework,
         "modules": entries}
    if downgrade:
        m["downgrade"] = True
    return m


def keys_manifest(board: str, seq: int, new_keys: list) -> dict:
    """A key statement: the complete list of keys the board trusts once it accepts this."""
    entries = [{"n": keys.modulus_bytes(k).hex(), "e": k.public_numbers().e} for k in new_keys]
    return {"v": 1, "type": "keys", "board": board, "seq": seq, "keys": entries}


def assemble(manifest: dict, blobs: bytes, key=None) -> Container:
    """Sign (with `key`, else leave unsigned) and wrap in the container."""
    raw = manifest_bytes(manifest)
    if key is None:
        return Container(raw, b"", bytes(8), blobs)
    return Container(raw, keys.sign(key, raw), keys.key_id(key.public_key()), blobs)
