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
from ..paths import BUILD
from ..sim.board import VirtualBoard, lock_path
from .image import files_for

LEAVE = 0x1D  # Ctrl-]
SHOWN = {"wdt-reset", "reset", "power-off", "crash", "halted"}
QEMU_BOARDS = {"mps2-an385"}  # played by QEMU (outstack.sim.qemu), not by the unix port


def _image(args) -> Path:
    path = Path(args.image) if args.image else BUILD / f"flash-{args.board}.img"
    if args.config and not args.fresh:
        raise CliError("--config is written into a fresh image: add --fresh")
    if args.fresh:
        from .. import image

        image.build(path, args.board, files_for(args.board, args.config))
    return path


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
    boards.load(args.board)
    wifi = _wifi(args)
    if args.board in QEMU_BOARDS:  # real firmware on an emulated chip: the same face
        from ..sim.qemu import QemuBoard

        board = QemuBoard(_image(args), args.board)
    else:
        board = VirtualBoard(_image(args), args.board, uart_baud=args.uart_baud,
                             usb_baud=args.usb_baud or None, wifi=wifi)
    attach = sys.stdin.isatty() and not args.no_attach
    out = sys.stdout.buffer
    hide = HideConsole()
    board.listeners.append(lambda data: (out.write(hide(data)), out.flush()))
    board.event_hooks.append(lambda ev: ev.kind in SHOWN and _say(out, f"{ev.kind}: {ev.detail}"))
    board.start()
    held = _link(args.link, board.usb_port) if args.link else None
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
        board.stop()
        if held:
            Path(args.link).unlink(missing_ok=True)
            held.close()
    return 1 if board.state == "halted" else 0


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
