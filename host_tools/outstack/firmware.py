"""Build MicroPython firmware with the framework frozen in, for a board that has its own
MicroPython board definition here (boards/<name>/mpconfigboard.mk): `make firmware BOARD=...`.

The MicroPython tree is a build input, never part of this repository: MICROPY_DIR (a checkout),
else MICROPY_TARBALL, else the pinned snapshot ../shared/vendor/micropython-<commit>.tar.gz,
unpacked once into build/src/. micropython-lib comes from MPY_LIB_DIR, the checkout's
lib/micropython-lib, or the micropython-lib-<commit>.tar.gz beside the tarball. A build is
cached in build/firmware/<board>/<key>/ by the hash of everything that goes into it."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from .errors import CliError
from .paths import BOARDS, BUILD, LIB, ROOT

# MicroPython board definitions (ports/<PORT>) for the boards that have one here.
PORTS = {"mps2-an385": "qemu"}
VENDOR = ROOT.parent / "shared" / "vendor"
HOW_TO_GET = ("set MICROPY_DIR to a MicroPython checkout (with lib/micropython-lib), or "
              "MICROPY_TARBALL to a snapshot tarball such as ../shared/vendor/micropython-<commit>.tar.gz")
TOOLS = ("arm-none-eabi-gcc", "make")


def missing() -> str | None:
    """Why no firmware can be built here (one sentence that says how to fix it), or None."""
    for tool in TOOLS:
        if not shutil.which(tool):
            return (f"'{tool}' is not installed: apt-get install gcc-arm-none-eabi "
                    "libnewlib-arm-none-eabi make")
    try:
        _sources()
    except CliError as e:
        return str(e)
    return None


def _vendor_tarball(prefix: str) -> Path | None:
    pattern = re.compile(re.escape(prefix) + r"-[0-9a-f]{7,40}\.tar\.gz")
    found = sorted(p for p in VENDOR.glob(prefix + "-*.tar.gz") if pattern.fullmatch(p.name))
    return found[-1] if found else None


def _sources() -> tuple[str, Path | None, Path | None]:
    """(what identifies the MicroPython source, its tree or tarball, micropython-lib's)."""
    given = os.environ.get("MICROPY_DIR")
    if given:
        tree = Path(given).resolve()
        if not (tree / "py" / "mpconfig.h").is_file():
            raise CliError(f"MICROPY_DIR={given} is not a MicroPython tree (no py/mpconfig.h)")
        lib = os.environ.get("MPY_LIB_DIR") or tree / "lib" / "micropython-lib"
        return _tree_id(tree), tree, Path(lib)
    tarball = os.environ.get("MICROPY_TARBALL")
    if tarball and not Path(tarball).is_file():
        raise CliError(f"MICROPY_TARBALL={tarball} is not a file")
    path = Path(tarball).resolve() if tarball else _vendor_tarball("micropython")
    if path is None or not path.is_file():
        raise CliError(f"no MicroPython source found: {HOW_TO_GET}")
    lib_env = os.environ.get("MPY_LIB_DIR")
    lib = Path(lib_env) if lib_env else _vendor_tarball("micropython-lib") or \
        next(iter(sorted(path.parent.glob("micropython-lib-*.tar.gz"))), None)
    if lib is None:
        raise CliError(f"no micropython-lib beside {path.name}: set MPY_LIB_DIR to a checkout")
    return f"{path.name}:{path.stat().st_size}:{lib.name}", path, lib


def _tree_id(tree: Path) -> str:
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    return f"{tree}:{head.stdout.strip()}" if head.returncode == 0 else str(tree)


def _unpacked(archive: Path) -> Path:
    """The folder the tarball unpacks into, under build/src/ (unpacked once)."""
    dest = BUILD / "src" / archive.name.removesuffix(".tar.gz")
    stamp = dest / ".unpacked"
    if not stamp.exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "tar_filter"):  # Python 3.11.4+: refuse links out of dest
                tar.extractall(dest, filter="tar")
            else:
                tar.extractall(dest)
        stamp.touch()
    (inner,) = [p for p in dest.iterdir() if p.is_dir()]
    return inner


def _key(board: str, source_id: str, app: Path | None) -> str:
    digest = hashlib.sha256(source_id.encode())
    inputs = [(ROOT, p) for p in (Path(__file__), ROOT / "manifest.py",
                                  *sorted((BOARDS / board).rglob("*")), *sorted(LIB.rglob("*.py")))]
    if app is not None:
        digest.update(b"app\0" + str(app).encode())
        inputs += [(app, p) for p in sorted(app.rglob("*"))]
    for base, path in inputs:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".md":
            digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _run(cmd: list[str], log: Path, env: dict | None = None) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    if done.returncode:
        lines = (done.stderr + done.stdout).strip().splitlines() or ["no output"]
        first = next((line for line in lines if "error" in line.lower()), lines[-1])
        raise CliError(f"{' '.join(cmd[:3])} failed ({first.strip()}): the whole log is in {log}")


def build(board: str, app: Path | None = None, jobs: int = 2, log=print) -> Path:
    """Path of the firmware.elf for `board`, built now unless the cache has it. The framework
    is frozen in; so is the app, when `app` (a project's firmware folder) is given: its modules
    besides boot.py and main.py, and its requirements.txt. Without one, the firmware carries
    the framework alone and the app runs from the board's flash."""
    if app is not None:
        app = Path(app).resolve()
        if not (app / "main.py").is_file():
            raise CliError(f"{app} is no firmware folder (it has no main.py)")
    if board not in PORTS:
        raise CliError(f"no MicroPython board definition for '{board}': firmware builds "
                       f"for {', '.join(sorted(PORTS))}")
    reason = missing()
    if reason:
        raise CliError(reason)
    source_id, tree, lib = _sources()
    out = BUILD / "firmware" / board
    cached = out / _key(board, source_id, app) / "firmware.elf"
    if cached.is_file():
        return cached
    if tree.suffixes[-2:] == [".tar", ".gz"]:
        tree = _unpacked(tree)
    if lib.suffixes[-2:] == [".tar", ".gz"]:
        lib = _unpacked(lib)
    what = f"{board} firmware with {app} frozen in" if app else f"{board} firmware"
    log(f"building mpy-cross and {what}, in {out} (a minute or two on 2 cores)")
    log_path = out / "build.log"
    log_path.unlink(missing_ok=True)
    _run(["make", "-C", str(tree / "mpy-cross"), f"-j{jobs}"], log_path)
    # An unpacked snapshot is no git checkout: keep git from finding this repository above it
    # (the firmware would report our commit as MicroPython's version).
    env = dict(os.environ, OUTSTACK_BOARD=board, OUTSTACK_APP=str(app or ""),
               GIT_CEILING_DIRECTORIES=str(BUILD / "src"))
    for name in ("BOARD", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    make = ["make", "-C", str(tree / "ports" / PORTS[board]), f"-j{jobs}",
            f"BOARD={board.upper().replace('-', '_')}", f"BOARD_DIR={BOARDS / board}",
            f"BUILD={out / 'obj'}", f"FROZEN_MANIFEST={ROOT / 'manifest.py'}",
            f"MPY_LIB_DIR={lib}"]
    try:
        _run(make, log_path, env)
    except CliError:
        if not (out / "obj").exists():
            raise
        # An incremental build can trip over stale generated files (qstrs, frozen content)
        # after a configuration change: build once more from scratch before giving up.
        log(f"incremental build failed; building {board} from scratch")
        shutil.rmtree(out / "obj")
        _run(make, log_path, env)
    cached.parent.mkdir(parents=True, exist_ok=True)
    for name in ("firmware.elf", "firmware.bin"):
        shutil.copyfile(out / "obj" / name, cached.parent / name)
    return cached


def main(argv: list[str]) -> int:
    """`python -m outstack.firmware [BOARD]`: the framework-only firmware (`outstack firmware`
    builds a project's)."""
    board = argv[0] if argv else "mps2-an385"
    try:
        elf = build(board)
    except CliError as e:
        print(f"outstack: {e}", file=sys.stderr)
        return 1
    print(describe(elf))
    return 0


def describe(elf: Path) -> str:
    size = (elf.parent / "firmware.bin").stat().st_size
    return f"{elf} ({size} bytes of image)"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
