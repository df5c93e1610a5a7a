"""`outstack deploy --port PORT`: compile the firmware with mpy-cross, install the
micropython-lib packages it needs with mip, copy it to a board with mpremote, then soft-reset
the board from its friendly REPL so boot.py and main.py run. Everything that can be checked
(board, config, compile, port, mpy version) is checked before the first byte is written."""

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..paths import BUILD, FIRMWARE, ROOT, tool
from ..transport import open_port, raw_eval, restart
from .image import files_for

REQUIREMENTS = FIRMWARE / "requirements.txt"
AS_SOURCE = {"/boot.py", "/main.py"}  # a board runs only these two, and only as source
COPY_S = 600.0
MIP_S = 300.0

MKDIRS = """import os
for d in {!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""
# A .py beside a .mpy of the same name wins the import (py/builtinimport.c), so stale twins go.
REMOVE_TWINS = """import os
for p in {!r}:
    try:
        os.remove(p)
        print('removed', p)
    except OSError:
        pass
"""


def run(args):
    started = time.monotonic()
    boards.load(args.board)
    files = files_for(args.board, args.config, packages=False)  # mip brings the packages
    packages = [] if args.no_mip else requirements()
    board_mpy = probe(args.port)
    files = files + install_packages(args.port, packages)
    staged = stage(files, args.board, args.source)
    check_mpy(staged, board_mpy, args.port)
    report = copy(args.port, staged)
    restart(args.port)
    size = sum(path.stat().st_size for path, _ in staged)
    print(f"deployed {len(staged)} files, {size} bytes ({len(report.copied)} copied, "
          f"{len(report.same)} up to date) to {args.board} on {args.port} "
          f"in {time.monotonic() - started:.1f} s")


# ----- the build: build/deploy-BOARD/ mirrors the board's filesystem ---------------------
def requirements(path=None) -> list[str]:
    """micropython-lib package names, one a line; '#' starts a comment."""
    path = Path(path or REQUIREMENTS)
    if not path.is_file():
        return []
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def stage(files, board: str, source=False, out: Path | None = None) -> list[tuple[Path, str]]:
    """Compile (or copy, for --source) each (host file, board path) into `out`."""
    out = Path(out or BUILD / f"deploy-{board}")
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
    """mpy-cross one file; `name` is what tracebacks on the board will call it."""
    out = subprocess.run([tool("mpy-cross"), f"-march={march}", "-s", name, "-o", str(target),
                          str(src)], capture_output=True, text=True)
    if out.returncode != 0:
        raise CliError(_compile_error(src, out.stderr + out.stdout))


def _compile_error(src: Path, said: str) -> str:
    line = re.search(r"line (\d+)", said)
    last = said.strip().splitlines()[-1] if said.strip() else "mpy-cross failed"
    where = f"{_shown(src)}, line {line.group(1)}" if line else _shown(src)
    return f"cannot compile {where}: {last}"


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def probe(port: str) -> int:
    """Check the board answers; return its sys.implementation._mpy (0: loads no .mpy)."""
    with open_port(port) as link:
        said = raw_eval(link, port, "getattr(__import__('sys').implementation, '_mpy', 0)")
    return int(said) if said.isdigit() else 0


def check_mpy(staged, board_mpy: int, port: str) -> None:
    """Bytecode .mpy files load only where the board's mpy version is the one mpy-cross made."""
    made = next((p.read_bytes()[1] for p, dest in staged if dest.endswith(".mpy")), None)
    if made is None or board_mpy & 0xFF == made:
        return
    have = f"mpy v{board_mpy & 0xFF}" if board_mpy else "no .mpy files at all"
    raise CliError(f"the board on {port} loads {have}, but mpy-cross here makes mpy v{made}: "
                   f"update the board's MicroPython, or deploy with --source")


# ----- mpremote: mip packages and the copy -------------------------------------------------
def mpremote(port: str, args: list[str], feed=print, timeout=None) -> str | None:
    """Run mpremote on `port`, feeding its output lines to `feed`. None when it succeeds,
    else its last error line; a port or board it cannot reach raises CliError."""
    timeout = timeout or COPY_S
    proc = subprocess.Popen([tool("mpremote"), "connect", port, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines: list[str] = []
    for line in proc.stdout or ():
        lines.append(line.rstrip())
        feed(lines[-1])
    timer.cancel()
    if proc.wait() == 0:
        return None
    _check_reached(port, " ".join(lines))
    if proc.returncode == -signal.SIGKILL:
        return f"no answer within {timeout:g} s"
    errors = [line for line in lines if line.startswith("mpremote: ")] or lines or ["?"]
    return errors[-1].removeprefix("mpremote: ")


def _check_reached(port: str, said: str) -> None:
    if "failed to access" in said and os.path.exists(port):
        raise CliError(f"port {port} is in use by another program (close mpremote/terminal "
                       f"sessions on it)")
    if "failed to access" in said:
        raise CliError(f"no board at {port}: it went away")
    if "could not enter raw repl" in said:
        raise CliError(f"the board on {port} does not answer: mpremote could not enter its "
                       f"raw REPL")


def install_packages(port: str, names: list[str]) -> list[tuple[str, str]]:
    """mip-install each package on the board; where the board has no network, take the
    package's PyPI release instead (copied with the firmware: the files returned)."""
    from .. import mlib

    extra: list[tuple[str, str]] = []
    missing = []
    for name in names:
        print(f"mip install {name}")
        said = mpremote(port, ["mip", "install", name], feed=lambda line: None, timeout=MIP_S)
        if not said:
            continue
        if "Package not found" in said:
            raise CliError(_mip_error(port, [name], said))
        got = mlib.files([name], quiet=True)
        if got:
            print(f"  the board has no network for mip: {name} copied from its PyPI release "
                  f"({mlib.release(name)}) instead")
            extra += got
        else:
            missing.append((name, said))
    if missing:
        raise CliError(_mip_error(port, [n for n, _ in missing], missing[0][1]))
    return extra


def _mip_error(port: str, left: list[str], said: str) -> str:
    if "Package not found" in said:
        return f"micropython-lib has no package '{left[0]}' ({_shown(REQUIREMENTS)}): {said}"
    return (f"could not install micropython-lib packages {', '.join(left)}: no network? "
            f"(mpremote: {said}); the firmware was not copied. Install them from a machine "
            f"with internet: `mpremote connect {port} mip install {' '.join(left)}` (--target "
            f"/lib picks the folder), then deploy again with --no-mip; or freeze them into the "
            f"firmware (manifest.py requires everything in {_shown(REQUIREMENTS)})")


def copy(port: str, staged) -> "CopyReport":
    """One mpremote run: make folders, copy each file (unchanged ones are skipped by hash),
    then remove the other-suffix twin of each file (.py beside .mpy and back)."""
    dests = [dest for _, dest in staged]
    dirs = sorted({dest[:i] for dest in dests for i in _slashes(dest)})
    args = ["exec", MKDIRS.format(dirs)]
    for path, dest in staged:
        args += ["+", "fs", "cp", str(path), ":" + dest]
    args += ["+", "exec", REMOVE_TWINS.format([_twin(d) for d in dests if _twin(d)])]
    report = CopyReport({dest: path.stat().st_size for path, dest in staged})
    print(f"copying {len(staged)} files to {port}")
    said = mpremote(port, args, feed=report.feed)
    report.flush()
    if said:
        raise CliError(f"copy to {port} failed: {said}; the board may hold part of the new "
                       f"firmware: deploy again")
    return report


def _slashes(path: str) -> list[int]:
    return [i for i, c in enumerate(path) if c == "/" and i > 0]


def _twin(dest: str) -> str | None:
    if dest.endswith(".mpy"):
        return dest[:-4] + ".py"
    return dest[:-3] + ".mpy" if dest.endswith(".py") else None


class CopyReport:
    """Turns mpremote's `cp SRC :DEST` / `Up to date: DEST` lines into one line per file."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes
        self.pending: str | None = None
        self.copied: list[str] = []
        self.same: list[str] = []

    def feed(self, line: str) -> None:
        if line.startswith("Up to date: "):
            self.same.append(line[len("Up to date: "):])
            print(f"  same    {self.same[-1]}")
            self.pending = None
            return
        self.flush()
        if line.startswith("cp ") and " :" in line:
            self.pending = line.rsplit(" :", 1)[1]
        elif line.startswith("removed "):
            print(f"  removed {line[8:]} (stale twin)")
        elif line.strip():
            print(f"  {line}")

    def flush(self) -> None:
        if self.pending:
            self.copied.append(self.pending)
            print(f"  copied  {self.pending} ({self.sizes.get(self.pending, '?')} bytes)")
            self.pending = None
