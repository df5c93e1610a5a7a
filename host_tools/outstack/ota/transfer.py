"""The host's side of a push: the framed, windowed, resumable transfer of one package
(see lib/outstack/ota/link.py for the frame layout), over a serial port or TCP."""

import binascii
import hashlib
import socket
import struct
import time

from ..errors import CliError

SYNC = b"\xa5\x5a"
HELLO, DATA, END, ABORT, STATUS = 0x48, 0x44, 0x45, 0x41, 0x53
READY, ACK, NAK, DONE, FAIL, BUSY = 0x52, 0x43, 0x4E, 0x4B, 0x58, 0x42
CHUNK = 1024
ANSWER_S = 5.0  # the board answers a frame within this, or we resend from the last ack
GIVE_UP_S = 30.0


def frame(kind: int, payload: bytes = b"") -> bytes:
    body = bytes([kind]) + struct.pack("<H", len(payload)) + payload
    return SYNC + body + struct.pack("<I", binascii.crc32(body) & 0xFFFFFFFF)


class SerialLine:
    def __init__(self, port: str, baud: int = 115200, opened=None):
        """The port, opened here, or `opened` (a pyserial port someone already holds)."""
        import serial

        if opened is not None:
            self.s = opened
            return
        try:
            self.s = serial.Serial(port, baud, timeout=0, exclusive=True)
        except serial.SerialException as e:
            raise CliError(f"cannot open {port}: {e}") from None

    def write(self, data: bytes):
        self.s.write(data)

    def read(self, timeout: float) -> bytes:
        self.s.timeout = timeout
        return self.s.read(max(1, self.s.in_waiting))

    def close(self):
        self.s.close()


class TcpLine:
    def __init__(self, host: str, port: int):
        try:
            self.s = socket.create_connection((host, port), timeout=5)
        except OSError as e:
            raise CliError(f"cannot reach {host}:{port}: {e}") from None

    def write(self, data: bytes):
        self.s.sendall(data)

    def read(self, timeout: float) -> bytes:
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(4096)
        except socket.timeout:
            return b""
        if not data:
            raise EOFError("the board closed the connection")
        return data

    def close(self):
        self.s.close()


class Frames:
    """Frames out of a byte stream; noise and damaged frames are skipped."""

    def __init__(self, line):
        self.line = line
        self.buf = bytearray()

    def next(self, timeout: float):
        end = time.monotonic() + timeout
        while True:
            got = self._parse()
            if got:
                return got
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.buf += self.line.read(min(left, 0.2))

    def _parse(self):
        i = self.buf.find(SYNC)
        if i < 0:
            del self.buf[:-1]
            return None
        del self.buf[:i]
        if len(self.buf) < 5:
            return None
        n = struct.unpack_from("<H", self.buf, 3)[0]
        if len(self.buf) < 9 + n:
            return None
        body, crc = bytes(self.buf[2:5 + n]), struct.unpack_from("<I", self.buf, 5 + n)[0]
        del self.buf[:9 + n]
        if binascii.crc32(body) & 0xFFFFFFFF != crc:
            return None
        return body[0], body[3:]


class Silent(CliError):
    """The board said nothing in time (as opposed to refusing)."""


class Sender:
    def __init__(self, line, progress=None):
        self.line = line
        self.frames = Frames(line)
        self.progress = progress or (lambda done, total: None)
        self.resumed_from = 0
        self.resent = 0  # bytes sent twice (after a NAK or a silence)
        self.transfer_s = 0.0  # HELLO to the last byte acknowledged on flash
        self.install_s = 0.0  # END to the board's verdict (verify, stage, swap, health check)

    def push(self, data: bytes) -> str:
        digest = hashlib.sha256(data).digest()
        t0 = time.monotonic()
        kind, body = self._hello(frame(HELLO, struct.pack("<I", len(data)) + digest))
        pos = acked = self.resumed_from = struct.unpack_from("<I", body)[0]
        window = struct.unpack_from("<I", body, 4)[0]
        last = time.monotonic()
        while acked < len(data):
            while pos < len(data) and pos - acked < window:
                chunk = data[pos:pos + CHUNK]
                self.line.write(frame(DATA, struct.pack("<I", pos) + chunk))
                pos += len(chunk)
            got = self.frames.next(0.05)
            now = time.monotonic()
            if got and got[0] == ACK:
                acked, last = max(acked, struct.unpack_from("<I", got[1])[0]), now
                self.progress(acked, len(data))
            elif got and got[0] == NAK:
                self.resent += pos - struct.unpack_from("<I", got[1])[0]
                pos = acked = struct.unpack_from("<I", got[1])[0]
            elif got and got[0] == FAIL:
                raise CliError(f"the board refused the package: {got[1].decode(errors='replace')}")
            elif now - last > ANSWER_S:
                if now - last > GIVE_UP_S:
                    raise CliError("the board stopped answering (link cut?): run push again "
                                   "to resume from what it has")
                self.resent += pos - acked
                pos = acked  # silence: send again from the last acknowledged byte
        t1 = time.monotonic()
        self.transfer_s = t1 - t0
        self.line.write(frame(END))
        said = self._verdict()
        self.install_s = time.monotonic() - t1
        return said

    def _verdict(self, poll=10.0, give_up=120.0) -> str:
        # The install's one line; a board silent for `poll` s is asked its STATUS: if that
        # answers, the board went down during the install (a reset, the watchdog) and is back.
        import json

        end = time.monotonic() + give_up
        while time.monotonic() < end:
            try:
                got = self.frames.next(poll)
            except EOFError:
                raise CliError("the board closed the link during the install (did it reset?): "
                               "`outstack ota status` tells what it runs now") from None
            if got is None:
                self.line.write(frame(STATUS))
                continue
            if got[0] == FAIL:
                raise CliError(f"the board refused the package: {got[1].decode(errors='replace')}")
            if got[0] != DONE:
                continue
            try:
                st = json.loads(got[1])
            except ValueError:
                return got[1].decode(errors="replace")
            if isinstance(st, dict) and "running" in st and not st.get("busy"):
                why = st.get("rolled_back") or "no reason kept"
                raise CliError(f"the board went down during the install and came back running "
                               f"update {st['running']}: {why}")
        raise CliError(f"no verdict from the board within {give_up:g} s of the end of the push")

    def status(self) -> dict:
        import json

        self.line.write(frame(STATUS))
        return json.loads(self._expect((DONE,))[1])

    def _hello(self, hello: bytes, tries: int = 3):
        """HELLO until READY: line noise before it can swallow one (the board drops a frame
        that noise began after its 2 s gap, and then hears the next HELLO)."""
        for attempt in range(tries):
            self.line.write(hello)
            try:
                return self._expect((READY,))
            except Silent:
                if attempt == tries - 1:
                    raise

    def _expect(self, kinds, timeout=ANSWER_S):
        got = self.frames.next(timeout)
        if got is None:
            raise Silent(f"no answer from the board within {timeout:g} s: is the OTA server "
                         "running on it?")
        if got[0] == BUSY:
            raise CliError("the board is busy with another push: try again when it is done")
        if got[0] == FAIL:
            raise CliError(f"the board refused the package: {got[1].decode(errors='replace')}")
        if got[0] not in kinds:
            return self._expect(kinds, timeout)  # a late ACK of an earlier push: skip it
        return got
