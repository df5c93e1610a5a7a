"""Talking to a board's REPL over its serial port directly (pyserial), for the short
exchanges mpremote has no command for: interrupt, evaluate, soft-reset into main.py."""

import errno
import os
import time

import serial

from .errors import CliError

ANSWER_S = 5.0  # how long a board may take to show its REPL
WATCH_S = 3.0  # how long to show what main.py prints after the reset
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"


def open_port(port: str) -> serial.Serial:
    """The port, held exclusively as mpremote holds it; CliError if it cannot be had."""
    if not os.path.exists(port):
        raise CliError(f"no board at {port}: no such device (is the board plugged in? "
                       f"`mpremote devs` lists the ports)")
    try:
        return serial.Serial(port, 115200, timeout=0.05, exclusive=True)
    except serial.SerialException as e:
        raise CliError(_open_error(port, e)) from None


def _open_error(port: str, e: serial.SerialException) -> str:
    if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
        return f"port {port} is in use by another program (close mpremote/terminal sessions on it)"
    if e.errno == errno.EACCES:
        return f"no permission to open {port}: add yourself to the dialout group and log in again"
    return f"no board at {port}: {e}"


def read_until(link: serial.Serial, port: str, end: bytes, timeout=None) -> bytes:
    timeout = timeout or ANSWER_S
    data = b""
    deadline = time.monotonic() + timeout
    while end not in data:
        if time.monotonic() > deadline:
            raise CliError(f"the board on {port} does not answer: no MicroPython REPL within "
                           f"{timeout:g} s (is it running MicroPython? try `mpremote connect "
                           f"{port} repl`)")
        data += link.read(link.in_waiting or 1)
    return data


def raw_eval(link: serial.Serial, port: str, expr: str, doing: str | None = None) -> str:
    """Interrupt whatever runs, evaluate `expr` in the raw REPL, leave to the friendly REPL.
    A device traceback becomes one host error line: `doing` failed: its last line."""
    link.write(b"\r\x03\x03")
    time.sleep(0.1)
    link.reset_input_buffer()
    link.write(b"\r\x01")
    read_until(link, port, RAW_PROMPT)
    link.write(f"print({expr})".encode() + b"\x04")
    reply = read_until(link, port, b"\x04>")  # OK<stdout>\x04<stderr>\x04>
    link.write(b"\r\x02")
    out, _, err = reply.split(b"OK", 1)[-1].partition(b"\x04")
    said = err.strip(b"\x04>").decode(errors="replace").strip()
    if said:
        last = said.splitlines()[-1].strip()
        raise CliError(f"the board on {port} failed {doing or f'`{expr}`'}: {last}")
    return out.decode(errors="replace").strip()


def restart(port: str) -> None:
    """Ctrl-D at the friendly prompt: a soft reset from the raw REPL (what `mpremote
    soft-reset` does) runs boot.py only, so main.py would not run."""
    with open_port(port) as link:
        for attempt in range(3):  # a Ctrl-C still landing can swallow the Ctrl-D: ask again
            link.write(b"\r\x03\x03\x02")
            read_until(link, port, b">>> ")
            link.write(b"\x04")
            try:
                read_until(link, port, b"soft reboot\r\n")
                break
            except CliError:
                if attempt == 2:
                    raise
        for line in watch(link).splitlines():
            print(f"  board| {line}")


def watch(link: serial.Serial, seconds=WATCH_S) -> str:
    """What the board prints until its REPL prompt comes back or `seconds` pass."""
    data = b""
    deadline = time.monotonic() + seconds
    while b">>> " not in data and time.monotonic() < deadline:
        data += link.read(link.in_waiting or 1)
    return data.decode(errors="replace").split(">>> ")[0].replace("\r\n", "\n").strip()


