"""`outstack sim`: boot a virtual board, print its ports, attach this terminal to its REPL."""

import os
import select
import signal
import sys
import termios
import threading
import tty
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..connect import announce, withdraw
from ..project import find
from ..sim.board import VirtualBoard, lock_path

LEAVE = 0x1D  # Ctrl-]
SHOWN = {"wdt-reset", "reset", "power-off", "crash", "halted"}
QEMU_BOARDS = {"mps2-an385"}  # played by QEMU (outstack.sim.qemu), not by the unix port


def _image(args):
    """(image to boot, its project): IMAGE as it is, or the project's (built when --fresh or
    missing)."""
    if args.config and not args.fresh:
        raise CliError("--config is written into a fresh image: add --fresh")
    if args.image and not args.fresh:
        args.board = args.board or "unix"
        return Path(args.image), None
    from .image import build, default_image

    project = find(args.project)
    args.board = args.board or project.board
    path = Path(args.image) if args.image else default_image(project, args.board)
    if args.fresh or not path.exists():
        _say(sys.stdout.buffer, f"building {path} from {project.shown(project.firmware)} "
                                f"(project {project.name!r})")
        build(project, path, args.board, args.config)
    return path, project


def _wifi(args):
    if args.no_wifi:
        return None
    ssid, sep, key = args.wifi.partition(":")
    if not sep or not ssid:
        raise CliError(f"--wifi wants SSID:KEY, not '{args.wifi}'")
    return ssid, key


def _link(path: str, target: str):
    link = Path(path)
    if link.exists() and not link.is_symlink():
        raise CliError(f"{link} exists and is not a virtual board link; not touching it")
    lock = Path(str(link) + ".lock")
    lock.touch()
    held = lock_path(lock, f"port {link}")
    if link.is_symlink():
        link.unlink()
    link.symlink_to(target)
    return held


def run(args):
    if args.stop:
        return _stop(args)
    if args.detach:
        return _detach(args)
    if args.board:
        boards.load(args.board)
    wifi = _wifi(args)
    img, project = _image(args)
    if args.board in QEMU_BOARDS:  # real firmware on an emulated chip: the same face
        from ..sim.qemu import QemuBoard

        board = QemuBoard(img, args.board)
    else:
        board = VirtualBoard(img, args.board, uart_baud=args.uart_baud,
                             usb_baud=args.usb_baud or None, wifi=wifi)
    attach = sys.stdin.isatty() and not args.no_attach
    out = sys.stdout.buffer
    hide = HideConsole()
    board.listeners.append(lambda data: (out.write(hide(data)), out.flush()))
    board.event_hooks.append(lambda ev: ev.kind in SHOWN and _say(out, f"{ev.kind}: {ev.detail}"))
    board.start()
    try:
        board.wait_for("booted", timeout=30)
    except TimeoutError:
        pass  # a firmware that never boots is still a board to look at (its output says why)
    held = _link(args.link, board.usb_port) if args.link else None
    running = announce(project, {"board": args.board, "usb": board.usb_port,
                                 "uart": board.uart_port, "image": str(board.image)})
    _say(out, f"virtual board '{args.board}' on {board.image}")
    _say(out, f"USB REPL: {board.usb_port}   (mpremote connect {board.usb_port})")
    _say(out, f"UART1:    {board.uart_port}   ({args.uart_baud} baud 8N1)")
    try:
        if attach:
            _say(out, "attached to the REPL: Ctrl-] leaves and switches the board off")
            _attach(board)
        else:
            _wait_for_signal()
    finally:
        withdraw(running)
        board.stop()
        if held:
            Path(args.link).unlink(missing_ok=True)
            held.close()
    return 1 if board.state == "halted" else 0


def _detach(args) -> int:
    """Start the board in a process of its own and return once it is up (`--stop` ends it)."""
    import subprocess
    import time

    from ..connect import running as running_sim

    project = find(args.project)
    if running_sim(project):
        raise CliError(f"a virtual board of project {project.name!r} is already running: "
                       f"`outstack sim --stop` switches it off")
    argv = [a for a in sys.argv[1:] if a != "--detach"] + ["--no-attach"]
    project.build.mkdir(parents=True, exist_ok=True)
    log = project.build / "sim.log"
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "outstack.cli", *argv], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=Path.cwd())
    end = time.monotonic() + 120
    while True:
        info = running_sim(project)
        if info and info.get("pid") == child.pid:
            break
        if child.poll() is not None or time.monotonic() > end:
            child.kill()
            said = log.read_text(errors="replace").strip().splitlines()
            raise CliError(f"the virtual board did not start: {said[-1] if said else 'no output'}"
                           f" (all of it in {log})")
        time.sleep(0.05)
    print(f"virtual board '{info['board']}' of project {project.name!r} is running "
          f"(pid {child.pid}; output in {project.shown(log)})")
    print(f"USB REPL: {info['usb']}   UART1: {info['uart']}")
    print("`outstack sim --stop` switches it off")
    return 0


def _stop(args) -> int:
    import time

    from ..connect import running as running_sim

    project = find(args.project)
    info = running_sim(project)
    if not info:
        raise CliError(f"no virtual board of project {project.name!r} is running")
    os.kill(int(info["pid"]), signal.SIGTERM)
    end = time.monotonic() + 30
    while running_sim(project) and time.monotonic() < end:
        time.sleep(0.05)
    print(f"virtual board of project {project.name!r} switched off")
    return 0


class HideConsole:
    """Drops the host console's answers (RS ... US CR LF on the USB REPL) from what the
    attached terminal shows: they are for `outstack console`, not for the person here."""

    def __init__(self):
        self.inside = False
        self.tail = b""  # what follows a US: its CR LF is dropped too

    def __call__(self, data: bytes) -> bytes:
        out = bytearray()
        data = bytes(data)
        while data:
            if self.tail:
                while data and self.tail and data[:1] == self.tail[:1]:
                    data, self.tail = data[1:], self.tail[1:]
                if data:
                    self.tail = b""  # anything else ends what may be dropped
                continue
            if self.inside:
                end = data.find(b"\x1f")
                if end < 0:
                    return bytes(out)
                data, self.inside, self.tail = data[end + 1:], False, b"\r\n"
            else:
                start = data.find(b"\x1e")
                if start < 0:
                    out += data
                    break
                out += data[:start]
                data, self.inside = data[start + 1:], True
        return bytes(out)


def _say(out, text):
    out.write(f"\r\n[outstack sim] {text}\r\n".encode())
    out.flush()


def _attach(board):
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        while board.state != "halted":
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            keys = os.read(fd, 1024)
            if not keys or LEAVE in keys:
                board.type(keys.split(bytes([LEAVE]))[0])
                return
            board.type(keys)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_for_signal():
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
