# The virtual board's wiring: one control line to the host process that plays the hardware.
# One-way notes (feed, cut, reset) get no reply; questions (ask) get exactly one line back.
import socket
import struct
import time

ctl = None
cfg = {}
mode = "friendly"  # which REPL the board is in: "friendly" or "raw"
_FEED = b"F\n"  # preallocated: feeding the watchdog must not allocate


def unix_addr(path):
    return struct.pack("H", socket.AF_UNIX) + path.encode() + b"\0"


def connect(path):
    global ctl
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.connect(unix_addr(path))


def _send(data):
    view = memoryview(data)
    while view:
        view = view[ctl.send(view):]


def tell(msg):
    _send(msg.encode() + b"\n")


def feed():
    _send(_FEED)


def ask(msg):
    tell(msg)
    line = b""
    while not line.endswith(b"\n"):
        part = ctl.recv(256)
        if not part:
            raise OSError("virtual board: host process is gone")
        line += part
    return line[:-1].decode()


def halt():
    # Power is being cut or the chip is resetting: the host kills us; never return.
    while True:
        time.sleep(1)
