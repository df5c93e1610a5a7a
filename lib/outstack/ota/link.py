# Frames of the update link, the same over UART1 and TCP:
#   A5 5A | kind u8 | len u16 LE | payload (len <= 1040) | CRC-32 u32 LE of kind..payload
# A reader resynchronises on A5 5A after noise; a frame whose CRC fails is dropped and
# counted. One preallocated buffer holds any frame; the one allocation per frame is the
# small timer task that drops a frame whose bytes stop coming for _GAP_MS.
import asyncio
from binascii import crc32
from micropython import const

_SYNC0 = const(0xA5)
_SYNC1 = const(0x5A)
MAX_PAYLOAD = const(1040)  # a DATA frame: 4-byte offset + 1024 bytes
HELLO = const(0x48)  # H: size u32, sha256[32] of the whole package
DATA = const(0x44)  # D: offset u32, bytes
END = const(0x45)  # E: no payload: check and keep the package
ABORT = const(0x41)  # A: give up this package
STATUS = const(0x53)  # S: no payload: the board answers DONE with its OTA status (JSON)
CONSOLE = const(0x51)  # Q: a console command (text): answered by OUT frames, then DONE
OUT = const(0x4F)  # O: part of a console answer (JSON text)
READY = const(0x52)  # R: resume offset u32, window u32
ACK = const(0x43)  # C: every byte below offset u32 is on flash
NAK = const(0x4E)  # N: send again from offset u32 (a gap or a bad frame)
DONE = const(0x4B)  # K: text: what the board made of it
FAIL = const(0x58)  # X: text: why it refused
BUSY = const(0x42)  # B: another push is in progress
_GAP_MS = const(2000)  # header, then payload, each within this (a 1 KB frame at 9600 baud: 1.1 s)


class Link:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.buf = bytearray(MAX_PAYLOAD + 8)
        self.mv = memoryview(self.buf)
        self.kind = 0
        self.n = 0
        self.bad = 0  # frames dropped for a bad CRC or length
        self.out = bytearray(16)
        self.store = None  # the push's part file on this link (ota/store.py), from its HELLO

    async def _fill(self, mv):
        got = 0
        while got < len(mv):
            n = await self.r.readinto(mv[got:])
            if not n:
                raise EOFError("the update link closed")
            got += n

    async def frame(self):
        """Read the next good frame: returns its kind; payload is self.payload()."""
        mv = self.mv
        while True:
            await self._fill(mv[0:1])
            if mv[0] != _SYNC0:
                continue
            await self._fill(mv[0:1])
            if mv[0] != _SYNC1:
                continue
            if not await self._rest(mv[0:3]):
                continue
            n = mv[1] | mv[2] << 8
            if n > MAX_PAYLOAD:
                self.bad += 1
                continue
            if not await self._rest(mv[3 : 3 + n + 4]):
                continue
            crc = mv[3 + n] | mv[4 + n] << 8 | mv[5 + n] << 16 | mv[6 + n] << 24
            if crc32(mv[0 : 3 + n]) & 0xFFFFFFFF != crc:
                self.bad += 1
                return 0  # kind 0: a damaged frame; the caller asks for a resend
            self.kind, self.n = mv[0], n
            return self.kind

    async def _rest(self, mv):
        # The rest of a started frame, or False (counted bad) if the sender fell silent in it:
        # half a frame must not hold the link until more bytes happen to come.
        try:
            await asyncio.wait_for_ms(self._fill(mv), _GAP_MS)
            return True
        except asyncio.TimeoutError:
            self.bad += 1
            return False

    def payload(self):
        return self.mv[3 : 3 + self.n]

    async def send(self, kind, payload=b""):
        n = len(payload)
        head = self.out
        head[0], head[1], head[2], head[3], head[4] = _SYNC0, _SYNC1, kind, n & 0xFF, n >> 8
        crc = crc32(payload, crc32(memoryview(head)[2:5])) & 0xFFFFFFFF
        self.w.write(head[0:5])
        if n:
            self.w.write(payload)
        self.w.write(crc.to_bytes(4, "little"))
        await self.w.drain()

    async def send_u32(self, kind, a, b=None):
        p = a.to_bytes(4, "little") if b is None else a.to_bytes(4, "little") + b.to_bytes(4, "little")
        await self.send(kind, p)


def u32(mv, at=0):
    return mv[at] | mv[at + 1] << 8 | mv[at + 2] << 16 | mv[at + 3] << 24
