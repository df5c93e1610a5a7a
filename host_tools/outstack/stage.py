"""Building what goes on a board: the firmware's modules compiled with mpy-cross for the
board's architecture (cached by content) or copied as source, into a folder that mirrors the
board's filesystem; and the micropython-lib packages a project's requirements.txt names.
Used by deploy, image builds, OTA packs and the fleet's virtual boards."""

import os
import re
import shutil
import subprocess
from pathlib import Path

from . import boards
from .errors import CliError
from .paths import BUILD, tool
from .project import shown

AS_SOURCE = {"/boot.py", "/main.py"}  # a board runs only these two, and only as source


def requirements(path) -> list[str]:
    """micropython-lib package names, one a line; '#' starts a comment."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def stage(files, board: str, source=False, out: Path | None = None) -> list[tuple[Path, str]]:
    """Compile (or copy, for --source) each (host file, board path) into `out`."""
    out = Path(out or BUILD / f"stage-{board}")
    shutil.rmtree(out, ignore_errors=True)
    march = boards.load(board)["ARCH"]
    return [_stage_one(Path(src), dest, out, march, source) for src, dest in files]


def _stage_one(src: Path, dest: str, out: Path, march: str, source: bool):
    compiled = dest.endswith(".py") and dest not in AS_SOURCE and not source
    board_path = dest[:-3] + ".mpy" if compiled else dest
    target = out / board_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if compiled:
        compile_mpy(src, target, march, dest)
    else:
        shutil.copyfile(src, target)
    return target, board_path


def compile_mpy(src: Path, target: Path, march: str, name: str) -> None:
    """mpy-cross one file; `name` is what tracebacks on the board will call it. Results are
    kept by the hash of what made them, so an unchanged module is not compiled again."""
    cached = _cache_path(src, march, name)
    if cached.is_file():
        shutil.copyfile(cached, target)
        return
    out = subprocess.run([tool("mpy-cross"), f"-march={march}", "-s", name, "-o", str(target),
                          str(src)], capture_output=True, text=True)
    if out.returncode != 0:
        raise CliError(_compile_error(src, out.stderr + out.stdout))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}")
    shutil.copyfile(target, tmp)
    os.replace(tmp, cached)


def _cache_path(src: Path, march: str, name: str) -> Path:
    import hashlib

    h = hashlib.sha256(Path(src).read_bytes())
    h.update(f"\0{march}\0{name}\0{_mpy_cross_id()}".encode())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "outstack" / "mpy" / h.hexdigest()[:2] / h.hexdigest()


_MPY_CROSS: list[str] = []


def _mpy_cross_id() -> str:
    """Which mpy-cross compiles: its path and its version line (asked once per process)."""
    if not _MPY_CROSS:
        exe = tool("mpy-cross")
        said = subprocess.run([exe, "--version"], capture_output=True, text=True)
        _MPY_CROSS.append(f"{exe} {said.stdout.strip()}")
    return _MPY_CROSS[0]


def _compile_error(src: Path, said: str) -> str:
    line = re.search(r"line (\d+)", said)
    last = said.strip().splitlines()[-1] if said.strip() else "mpy-cross failed"
    where = f"{shown(src)}, line {line.group(1)}" if line else shown(src)
    return f"cannot compile {where}: {last}"
