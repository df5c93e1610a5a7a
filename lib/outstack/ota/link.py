# Frames of the update link, the same over UART1 and TCP:
#   A5 5A | kind u8 | len u16 LE | payload (len <= 1040) | CRC-32 u32 LE of kind..payload
# Bytes are read in chunks into one preallocated buffer that holds any frame, and the
# reader resynchronises on A5 5A with find(): noise costs a search, not an await per byte.
# A frame whose CRC fails is counted and its bytes searched again for the next sync. The one
# allocation per frame is the small timer task that drops it when it is not whole _GAP_MS
# after its sync.
import asyncio
from binascii import crc32
from micropython import const

_SYNC0 = const(0xA5)
_SYNC1 = const(0x5A)
_SYNC = b"\xa5\x5a"
MAX_PAYLOAD = const(1040)  # a DATA frame: 4-byte offset + 1024 bytes
_FRAME = const(1049)  # the longest frame: sync 2, header 3, payload, CRC 4
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
_GAP_MS = const(2000)  # a whole frame within this of its sync (1 KB at 9600 baud: 1.1 s)


class Link:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.buf = bytearray(_FRAME)  # buf[lo:hi]: read, not yet taken
        self.mv = memoryview(self.buf)
        self.lo = self.hi = 0
        self.at = 0  # where the last good frame starts in buf
        self.kind = 0
        self.n = 0
        self.bad = 0  # frames dropped for a bad CRC or length, or cut short
        self.out = bytearray(16)
        self.store = None  # the push's part file on this link (ota/store.py), from its HELLO

    async def frame(self):
        """Read the next good frame: returns its kind (0: a damaged one, for a resend);
        its payload is self.payload() until the next call."""
        buf = self.buf
        while True:
            i = buf.find(_SYNC, self.lo, self.hi)
            if i < 0:  # noise: all of it goes, but a last A5 that may start a sync
                half = self.hi > self.lo and buf[self.hi - 1] == _SYNC0
                buf[0] = _SYNC0
                self.lo, self.hi = 0, 1 if half else 0
                await self._read()  # between frames: as long as it takes (the caller bounds it)
                continue
            self.lo = i
            try:  # half a frame must not hold the link until more bytes happen to come
                n = await asyncio.wait_for_ms(self._body(), _GAP_MS)  # type: int
            except asyncio.TimeoutError:
                n = _FRAME  # cut short: dropped as an impossible length is
            i = self.lo  # a read may have moved the frame to the front
            mv = self.mv
            if n <= MAX_PAYLOAD and crc32(mv[i + 2 : i + 5 + n]) & 0xFFFFFFFF == int.from_bytes(
                    mv[i + 5 + n : i + 9 + n], "little"):
                self.kind, self.n, self.at = buf[i + 2], n, i
                self.lo = i + 9 + n
                return self.kind
            self.bad += 1
            self.lo += 2  # searched again past this sync: its bytes may hold the next frame
            if n <= MAX_PAYLOAD:
                return 0

    async def _body(self):
        # The frame that starts at lo, whole in the buffer: its payload length, or over
        # MAX_PAYLOAD for one that cannot be.
        await self._have(5)
        n = self.buf[self.lo + 3] | self.buf[self.lo + 4] << 8
        if n <= MAX_PAYLOAD:
            await self._have(9 + n)
        return n

    async def _have(self, need):
        while self.hi - self.lo < need:
            await self._read()

    async def _read(self):
        if self.hi == len(self.buf):  # full: what is not taken yet moves to the front
            k = self.hi - self.lo
            if k:
                self.mv[0:k] = self.mv[self.lo : self.hi]
            self.lo, self.hi = 0, k
        n = await self.r.readinto(self.mv[self.hi :])
        if not n:
            raise EOFError("the update link closed")
        self.hi += n

    def payload(self):
        return self.mv[self.at + 5 : self.at + 5 + self.n]

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
