"""Talking to a running board's debug console (lib/outstack/debug/console.py), over any of
its three ways in:
  - the USB REPL, where the framework's live prompt takes a command as RS line CR and
    answers RS JSON US (nothing else on the prompt is disturbed; no Ctrl-C is ever sent);
  - UART1, on the update link's frames (CONSOLE, answered by OUT frames and DONE);
  - TCP (Wi-Fi), the same frames: --port HOST:PORT or tcp:HOST:PORT.
Every command goes as "@TAG command" with a fresh random tag, and the board puts the tag on
its answer (RS "@TAG " JSON US; DONE's payload, a FAIL's first word): an answer to an earlier
command that arrives late (it timed out, or a peer sent it) is skipped, never taken as this
one's. A serial port is probed the harmless way first (RS CR: the live prompt answers, a
plain REPL just prints its prompt, the update link ignores it as noise), then with a frame
chosen to carry no REPL control characters; whichever answer comes decides."""

import json
import os
import re
import time

from .errors import CliError
from .ota import transfer as T

CONSOLE, OUT = 0x51, 0x4F
RS, US = b"\x1e", b"\x1f"
ANSWER_S = 5.0
PROBE_S = 1.0  # the live prompt's chance to answer RS CR before a frame is tried too
_TCP = re.compile(r"^(?:tcp:)?([\w.\-]+):(\d+)$")
_CONTROL = (1, 2, 3, 4, 5, 10, 13)  # REPL keys (Ctrl-A..E, Ctrl-C) and line ends


class BoardError(Exception):
    """The board answered with an error (bad command, unknown server)."""


class MainStopped(CliError):
    """The USB port has a plain REPL: main.py (and so the live prompt) is not running."""


def _tag() -> bytes:
    return b"@" + os.urandom(4).hex().encode()


def _old_firmware(body: bytes) -> bool:
    # Firmware from before tags answers "@TAG words" as an unknown command "@TAG", untagged.
    return b"unknown command '@" in body


OLD = ("the board's firmware predates this outstack (its console answers carry no tag): "
       "deploy this version to it (`outstack deploy`, or `outstack sim --fresh`)")


class Usb:
    """The live prompt on the USB REPL."""

    def __init__(self, port: str, serial_port, buf: bytes = b""):
        self.port = port
        self.s = serial_port
        self.buf = buf

    def ask(self, line: str, timeout: float = ANSWER_S):
        tag = _tag()
        self.s.write(RS + tag + b" " + line.encode() + b"\r")
        end = time.monotonic() + timeout
        while True:
            unit = self._unit()
            if unit is not None:
                got, _, body = unit.partition(b" ") if unit.startswith(b"@") else (b"", b"", unit)
                if got == tag:
                    return _decode(body)
                if not got and _old_firmware(body):
                    raise CliError(OLD)
                continue  # another command's answer, late: not ours
            if time.monotonic() > end:
                return None
            self.buf += self.s.read(self.s.in_waiting or 1)

    def _unit(self) -> bytes | None:
        # The next whole RS ... US answer in what was read; what precedes it is the board's
        # own printing. JSON never holds RS or US raw, so they cannot occur inside one.
        i = self.buf.find(RS)
        if i < 0:
            self.buf = b""
            return None
        j = self.buf.find(US, i + 1)
        if j < 0:
            self.buf = self.buf[i:]
            return None
        unit, self.buf = self.buf[i + 1:j], self.buf[j + 1:]
        return unit

    def close(self):
        self.s.close()


class Framed:
    """The console frames on UART1 or TCP."""

    def __init__(self, line, frames=None):
        self.line = line
        self.frames = frames or T.Frames(line)

    def ask(self, line: str, timeout: float = ANSWER_S, payload: bytes | None = None):
        """The answer (decoded JSON), or None if none came in time. `payload`: the whole
        command, tag first, as made by the caller (the probe)."""
        if payload is None:
            payload = _tag() + b" " + line.encode()
        self.line.write(T.frame(CONSOLE, payload))
        return self.answer(payload.partition(b" ")[0], timeout)

    def answer(self, tag: bytes, timeout: float):
        body, refused = b"", None
        end = time.monotonic() + timeout
        while True:
            try:
                got = self.frames.next(max(0.0, end - time.monotonic()))
            except EOFError:
                if refused:  # the board said why before it closed the link
                    raise CliError(f"the board refused the console: {refused}") from None
                raise
            if got is None:
                return None
            kind, data = got
            if kind == OUT:
                body += data
            elif kind == T.DONE:
                if data == tag:
                    return _decode(body)
                if not data and _old_firmware(body):
                    raise CliError(OLD)
                body = b""  # another command's answer, late: not ours
            elif kind == T.FAIL:
                said, _, why = data.partition(b" ") if data.startswith(b"@") else (b"", b"", data)
                if said == tag:
                    raise CliError(f"the board refused the console: {why.decode(errors='replace')}")
                if not said:  # about the link, not a command: "too many connections", ...
                    refused = data.decode(errors="replace")
                body = b""

    def close(self):
        self.line.close()


def _decode(body: bytes):
    try:
        return json.loads(body)
    except ValueError:
        raise CliError(f"the board's answer was garbled ({len(body)} bytes that are not JSON: "
                       f"something else wrote into it); try again") from None


def _clean_probe(tag: bytes) -> bytes:
    # A tagged `help` padded with spaces until no byte of the frame is a REPL control
    # character or a line end: if this lands on a plain REPL it types nothing it would run.
    for pad in range(64):
        payload = tag + b" help" + b" " * pad
        f = T.frame(CONSOLE, payload)
        if not any(b in f for b in _CONTROL):
            return payload
    return tag + b" help"


def _answered(said) -> bool:
    return isinstance(said, dict) and ("ok" in said or "error" in said)  # a console answered


def connect(port: str, via: str = "auto"):
    """An open console on `port`; CliError if no board console answers there. `via`: "usb"
    (the live prompt), "link" (frames: UART1), or "auto" (whichever answers)."""
    m = _TCP.match(port)
    if m and not os.path.exists(port):
        ch = Framed(T.TcpLine(m.group(1), int(m.group(2))))
        try:
            if _answered(ch.ask("", ANSWER_S, _clean_probe(_tag()))):
                return ch
        except (EOFError, OSError):
            pass
        except CliError:
            ch.close()
            raise
        ch.close()
        raise CliError(f"nothing at {port} answered the console (is a console or OTA server "
                       f"listening on that port?)")
    from .transport import open_port

    s = open_port(port)
    try:
        ch = _sniff(port, s, via)
    except BaseException:
        s.close()
        raise
    if ch is None:
        s.close()
        raise CliError(f"no board console answered on {port}: not an Outstack board, or its "
                       f"firmware is not running (no live prompt on the USB REPL, no console or "
                       f"OTA server on UART1)")
    return ch


class _Tee:
    """The serial line, keeping a copy of what it reads: the probe looks for both answers."""

    def __init__(self, line):
        self.line = line
        self.seen = b""

    def write(self, data: bytes):
        self.line.write(data)

    def read(self, timeout: float) -> bytes:
        data = self.line.read(timeout)
        self.seen += data
        return data


def _sniff(port: str, s, via: str):
    """Usb, Framed or None: RS CR first (unless via="link"), then, if the live prompt has
    not answered within PROBE_S, a tagged probe frame (unless via="usb"); ANSWER_S more for
    either answer. A plain REPL's prompt, and no answer, is MainStopped."""
    s.reset_input_buffer()
    tee = _Tee(T.SerialLine(port, opened=s))
    frames = T.Frames(tee)
    tag = _tag()
    framed = via == "link"
    s.write(T.frame(CONSOLE, _clean_probe(tag)) if framed else RS + b"\r")
    end = time.monotonic() + (ANSWER_S if via != "auto" else PROBE_S)
    while True:
        got = frames.next(0.05)
        if via != "link":
            usb = _live_prompt(port, s, tee)
            if usb is not None:
                return usb
        if got is not None and framed:
            kind, data = got
            if kind == T.FAIL and data.startswith(tag + b" "):
                raise CliError(f"the board refused the console: "
                               f"{data[len(tag) + 1:].decode(errors='replace')}")
            if kind == T.DONE and data == tag:
                rest = T.Frames(tee.line)  # read on without the copy: a session may be long
                rest.buf = frames.buf
                return Framed(tee.line, rest)
        if time.monotonic() < end:
            continue
        if b">>> " in tee.seen:
            raise MainStopped(f"no board console answered on {port}: main.py is stopped "
                              f"(the board is at its plain REPL: an mpremote command stopped it, "
                              f"or it ended): soft-reset with Ctrl-D at the friendly prompt "
                              f"(`mpremote connect {port} repl`, Ctrl-D) or reset the board, "
                              f"then try again")
        if framed or via == "usb":
            return None
        framed = True
        s.write(T.frame(CONSOLE, _clean_probe(tag)))
        end = time.monotonic() + ANSWER_S


def _live_prompt(port: str, s, tee: _Tee):
    """A Usb console if what was read holds an answer of the live prompt (RS JSON US)."""
    while True:
        i = tee.seen.find(RS)
        j = tee.seen.find(US, i + 1) if i >= 0 else -1
        if j < 0:
            return None
        body, after = tee.seen[i + 1:j], tee.seen[j + 1:]
        try:
            if _answered(_decode(body.partition(b" ")[2] if body.startswith(b"@") else body)):
                return Usb(port, s, after)
        except CliError:
            pass  # RS and US inside a frame's binary bytes: not an answer
        tee.seen = tee.seen[:i] + after


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
