"""`outstack deploy [--port PORT]`: compile the project's firmware with mpy-cross, install
the micropython-lib packages it needs with mip, copy it to a board with mpremote, remove what
an earlier firmware left there (the board then holds exactly the project; data files are
kept unless --clean), put the OTA module area back to this version, then soft-reset the board
from its friendly REPL so boot.py and main.py run. Everything that can be checked (board,
config, compile, port, mpy version) is checked before the first byte is written."""

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from .. import boards, connect
from ..errors import CliError
from ..mipindex import HOW_TO_GET as SNAPSHOT_HOW_TO, no_proxy_env
from ..paths import tool
from ..project import find, shown
from ..stage import requirements, stage
from ..transport import open_port, raw_eval, restart
from .image import files_for

COPY_S = 600.0
MIP_S = 300.0

MKDIRS = """import os
for d in {!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""
# The board holds exactly the project: code and config of an earlier firmware go (a .py beside
# a .mpy of the same name would win the import), data stays unless clean. The black box and
# the OTA state stay; the OTA module area goes back to the deployed version (slot 0).
CLEAN = """import os
keep = set({keep!r})
def gone(p):
    os.remove(p)
    print('removed', p)
def walk(d, every):
    for e in list(os.ilistdir(d or '/')):
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            if p != '/.outstack':
                walk(p, every)
                try:
                    os.rmdir(p)
                except OSError:
                    pass
        elif p in keep:
            pass
        elif every or p.endswith('.py') or p.endswith('.mpy') or p == '/config.json':
            gone(p)
        else:
            print('kept', p)
walk('', {clean!r})
try:
    walk('/.outstack/ota/slot', True)
    os.rmdir('/.outstack/ota/slot')
except OSError:
    pass
try:
    gone('/.outstack/ota/current')
except OSError:
    pass
"""


def run(args):
    started = time.monotonic()
    project = find(args.project)
    board = args.board or project.deploy_board
    boards.load(board)
    port = connect.usb(project, args.port)
    files = files_for(project, board, args.config, packages=False)  # mip brings the packages
    packages = [] if args.no_mip else requirements(project.requirements)
    staged = stage(files, board, args.source, out=project.build / f"deploy-{board}")
    board_mpy = probe(port)
    check_mpy(staged, board_mpy, port)
    installed = install_packages(port, packages, project.requirements, args.index)
    report = copy(port, staged, installed, args.clean)
    restart(port)
    size = sum(path.stat().st_size for path, _ in staged)
    print(f"deployed project {project.name!r}: {len(staged)} files, {size} bytes "
          f"({len(report.copied)} copied, {len(report.same)} up to date, "
          f"{len(report.removed)} removed, {len(report.kept)} data files kept) to {board} on "
          f"{port} in {time.monotonic() - started:.1f} s")


def _shown(path: Path) -> str:
    return shown(path)


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
                            env={**no_proxy_env(), "PYTHONUNBUFFERED": "1"})
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


def install_packages(port: str, names: list[str], listed: Path, index: str | None = None):
    """mip-install each package on the board (mpremote fetches on the host and writes to the
    board), from `index` or else the public index; when that is out of reach, from the local
    micropython-lib snapshot's index served on 127.0.0.1. The board paths mip wrote."""
    installed: list[str] = []
    missing = []
    local = None
    try:
        for name in names:
            said = _mip(port, name, index or (local and local.url), installed)
            if said and not index and not local and "Package not found" not in said:
                local = _local_index()  # the public index is out of reach: the local one
                if local:
                    print(f"  the public index is out of reach: installing from the local "
                          f"{local.root.name.rsplit('-', 1)[0]} index at {local.url}")
                    said = _mip(port, name, local.url, installed)
            if not said:
                continue
            if index or local or "Package not found" in said:
                raise CliError(_mip_error(port, [name], said, listed, index or local.url))
            missing.append((name, said))
    finally:
        if local:
            local.close()
    if missing:
        raise CliError(_mip_error(port, [n for n, _ in missing], missing[0][1], listed))
    return installed


def _mip(port: str, name: str, index: str | None, installed: list[str]) -> str | None:
    print(f"mip install {name}" + (f" (index {index})" if index else ""))
    where = ["--index", index] if index else []
    return mpremote(port, ["mip", "install", *where, name], timeout=MIP_S,
                    feed=lambda line: _mip_line(line, installed))


def _local_index():
    """The local snapshot's index, served until closed; None when there is no snapshot."""
    from .. import mipindex, mlib

    root = mlib.index(quiet=True)
    return mipindex.serve(root) if root else None


def _mip_line(line: str, installed: list[str]) -> None:
    # mpremote mip says "Installing: /lib/x.mpy" (or "Exists: ...") for each file it puts there
    for head, said in (("Installing: ", "installed"), ("Exists: ", "same     ")):
        if line.startswith(head):
            installed.append(line[len(head):].strip())
            print(f"  {said} {installed[-1]}")


def _mip_error(port: str, left: list[str], said: str, listed: Path,
               index: str | None = None) -> str:
    if "Package not found" in said:
        return f"micropython-lib has no package '{left[0]}' ({_shown(listed)}): {said}"
    if index:
        return (f"could not install micropython-lib package {left[0]} from {index} (mpremote: "
                f"{said}); the firmware was not copied")
    return (f"could not install micropython-lib packages {', '.join(left)}: no network? "
            f"(mpremote: {said}); the firmware was not copied. Install them from a machine "
            f"with internet: `mpremote connect {port} mip install {' '.join(left)}` (--target "
            f"/lib picks the folder), then deploy again with --no-mip; or give a local index "
            f"(--index URL, `outstack mip-index serve` makes one from a micropython-lib "
            f"snapshot: {SNAPSHOT_HOW_TO}); or freeze them into the firmware (manifest.py "
            f"requires everything in {_shown(listed)})")


def copy(port: str, staged, installed=(), clean=False) -> "CopyReport":
    """One mpremote run: make folders, copy each file (unchanged ones are skipped by hash),
    then remove what is not the project's (see CLEAN)."""
    dests = [dest for _, dest in staged]
    dirs = sorted({dest[:i] for dest in dests for i in _slashes(dest)})
    args = ["exec", MKDIRS.format(dirs)]
    for path, dest in staged:
        args += ["+", "fs", "cp", str(path), ":" + dest]
    args += ["+", "exec", CLEAN.format(keep=sorted(set(dests) | set(installed)), clean=clean)]
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


class CopyReport:
    """Turns mpremote's `cp SRC :DEST` / `Up to date: DEST` lines into one line per file."""

    def __init__(self, sizes: dict[str, int]):
        self.sizes = sizes
        self.pending: str | None = None
        self.copied: list[str] = []
        self.same: list[str] = []
        self.removed: list[str] = []
        self.kept: list[str] = []

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
            self.removed.append(line[8:])
            print(f"  removed {line[8:]} (not in the project)")
        elif line.startswith("kept "):
            self.kept.append(line[5:])
            print(f"  kept    {line[5:]} (data, not in the project: --clean removes it)")
        elif line.strip():
            print(f"  {line}")

    def flush(self) -> None:
        if self.pending:
            self.copied.append(self.pending)
            print(f"  copied  {self.pending} ({self.sizes.get(self.pending, '?')} bytes)")
            self.pending = None
