"""Talking to a running board's debug console (lib/outstack/debug/console.py), over any of
its three ways in:
  - the USB REPL, where the framework's live prompt takes a command as RS line CR and
    answers RS JSON US (nothing else on the prompt is disturbed; no Ctrl-C is ever sent);
  - UART1, on the update link's frames (CONSOLE, answered by OUT frames and DONE);
  - TCP (Wi-Fi), the same frames: --port HOST:PORT or tcp:HOST:PORT.
A serial port is probed the harmless way first (a text line the update link ignores as
noise), then with a frame chosen to carry no REPL control characters."""

import json
import os
import re
import time

from .errors import CliError
from .ota import transfer as T

CONSOLE, OUT = 0x51, 0x4F
RS, US = b"\x1e", b"\x1f"
ANSWER_S = 5.0
PROBE_S = 1.0
_TCP = re.compile(r"^(?:tcp:)?([\w.\-]+):(\d+)$")


class BoardError(Exception):
    """The board answered with an error (bad command, unknown server)."""


class MainStopped(CliError):
    """The USB port has a plain REPL: main.py (and so the live prompt) is not running."""


class Usb:
    """The live prompt on the USB REPL."""

    def __init__(self, port: str, serial_port):
        self.port = port
        self.s = serial_port
        self.buf = b""

    def ask(self, line: str, timeout: float = ANSWER_S):
        self.s.write(RS + line.encode() + b"\r")
        return self._answer(timeout)

    def probe(self, timeout: float = PROBE_S):
        """Ask the empty command (RS CR): the live prompt answers it; a plain REPL, where
        RS is no key, just prints its prompt again, and nothing else is typed into it."""
        self.s.reset_input_buffer()
        self.s.write(RS + b"\r")
        end = time.monotonic() + timeout
        seen = b""
        while time.monotonic() < end:
            seen += self.s.read(self.s.in_waiting or 1)
            i = seen.find(RS)
            j = seen.find(US, i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0:
                self.buf = seen[j + 1:]
                return _decode(seen[i + 1:j])
        if b">>> " in seen:
            raise MainStopped(f"no board console answered on {self.port}: main.py is stopped "
                              f"(the board is at its plain REPL: an mpremote command stopped it, "
                              f"or it ended): soft-reset with Ctrl-D at the friendly prompt "
                              f"(`mpremote connect {self.port} repl`, Ctrl-D) or reset the board, "
                              f"then try again")
        return None

    def _answer(self, timeout):
        end = time.monotonic() + timeout
        while True:
            i = self.buf.find(RS)
            j = self.buf.find(US, i + 1) if i >= 0 else -1
            if i >= 0 and j >= 0:
                body, self.buf = self.buf[i + 1:j], self.buf[j + 1:]
                return _decode(body)
            if i < 0:
                self.buf = b""  # what the board printed meanwhile: not ours
            if time.monotonic() > end:
                return None
            self.buf += self.s.read(self.s.in_waiting or 1)

    def close(self):
        self.s.close()


class Framed:
    """The console frames on UART1 or TCP."""

    def __init__(self, line):
        self.line = line
        self.frames = T.Frames(line)

    def ask(self, line: str, timeout: float = ANSWER_S, payload: bytes | None = None):
        self.line.write(T.frame(CONSOLE, payload if payload is not None else line.encode()))
        body = b""
        end = time.monotonic() + timeout
        while True:
            got = self.frames.next(max(0.0, end - time.monotonic()))
            if got is None:
                return None
            kind, data = got
            if kind == OUT:
                body += data
            elif kind == T.DONE:
                return _decode(body)
            elif kind == T.FAIL:
                raise CliError(f"the board refused the console: {data.decode(errors='replace')}")

    def close(self):
        self.line.close()


def _decode(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        raise CliError(f"the board's answer was garbled ({len(body)} bytes that are not JSON: "
                       f"something else wrote into it); try again") from None


def _clean_probe() -> bytes:
    # A `help` command padded with spaces until no byte of the frame is a REPL control
    # character (Ctrl-A..Ctrl-E, Ctrl-C): if this lands on a plain REPL it types nothing.
    for pad in range(64):
        payload = b"help" + b" " * pad
        f = T.frame(CONSOLE, payload)
        if not any(b in f for b in (1, 2, 3, 4, 5)):
            return payload
    return b"help"


def connect(port: str, via: str = "auto"):
    """An open console on `port`; CliError if no board console answers there. `via`: "usb"
    (the live prompt), "link" (frames: UART1), or "auto" (the prompt first, then frames)."""
    m = _TCP.match(port)
    if m and not os.path.exists(port):
        ch = Framed(T.TcpLine(m.group(1), int(m.group(2))))
        if _probe(ch, lambda: ch.ask("help", PROBE_S * 2)):
            return ch
        ch.close()
        raise CliError(f"nothing at {port} answered the console (is a console or OTA server "
                       f"listening on that port?)")
    from .transport import open_port

    s = open_port(port)
    usb = Usb(port, s)
    if via != "link" and _probe(usb, usb.probe):
        return usb
    s.reset_input_buffer()
    ch = Framed(T.SerialLine(port, opened=s))
    if via != "usb" and _probe(ch, lambda: ch.ask("help", PROBE_S, _clean_probe())):
        return ch
    s.close()
    raise CliError(f"no board console answered on {port}: not an Outstack board, or its "
                   f"firmware is not running (no live prompt on the USB REPL, no console or OTA "
                   f"server on UART1)")


def _probe(ch, ask) -> bool:
    try:
        said = ask()
    except MainStopped:
        ch.close()
        raise
    except (ValueError, CliError, EOFError, OSError):
        return False
    return isinstance(said, dict) and ("ok" in said or "error" in said)  # a console answered


NEEDED = "signature required"  # lib/outstack/debug/auth.py: the board wants it signed


def find_key(args) -> str | None:
    """The private key that signs console commands: --key, else $OUTSTACK_KEY, else the
    project's dev key (outstack.toml ota.key) where there is a project and the key exists."""
    given = getattr(args, "key", None) or os.environ.get("OUTSTACK_KEY")
    if given:
        return given
    from .project import find

    try:
        project = find(getattr(args, "project", None))
    except CliError:
        return None
    return str(project.key) if project.key and project.key.is_file() else None


def load_signer(path: str | None):
    """The private key at `path` (CliError if it is not one), or None for no path."""
    if not path:
        return None
    from .ota import keys

    return keys.load_private(path)


def signed(ch, key, line: str, timeout: float = ANSWER_S) -> str:
    """`line` signed over a fresh challenge from the board (see lib/outstack/debug/auth.py)."""
    import base64

    from .ota import keys

    said = ch.ask("challenge", timeout)
    if not isinstance(said, dict) or "ok" not in said:
        why = said.get("error") if isinstance(said, dict) else "no answer"
        raise CliError(f"the board gave no challenge to sign ({why})")
    nonce = bytes.fromhex(said["ok"]["nonce"])
    command = " ".join(line.split())
    sig = keys.sign(key, b"outstack-console\n" + nonce + b"\n" + command.encode())
    kid = keys.key_id(key.public_key()).hex()
    return f"signed {nonce.hex()} {kid} {base64.b64encode(sig).decode()} {command}"


def ask(ch, line: str, timeout: float = ANSWER_S):
    """Run one command; its data, or BoardError with the board's message. A command the
    board wants signed is signed with the channel's key (ch.key) and asked again."""
    try:
        return _ask(ch, line, timeout)
    except (EOFError, OSError) as e:
        raise CliError(f"the board closed the link before answering {line.split()[0]!r}: "
                       f"{e}") from None


def _ask(ch, line: str, timeout: float):
    said = ch.ask(line, timeout)
    if isinstance(said, dict) and str(said.get("error", "")).startswith(NEEDED):
        key = getattr(ch, "key", None)
        if key is None:
            raise BoardError(said["error"].replace("(outstack console --key KEY)",
                                                   "(--key KEY or $OUTSTACK_KEY)"))
        said = ch.ask(signed(ch, key, line, timeout), timeout)
    if said is None:
        raise CliError(f"the board did not answer {line.split()[0]!r} within {timeout:g} s "
                       f"(is it hung? `outstack crashlog` tells why it last went down)")
    if "error" in said:
        raise BoardError(said["error"])
    return said["ok"]
