# What hostile input costs the update link's reader (lib/outstack/ota/link.py) on a board:
# seeded noise, valid frames of every kind and frames cut short, fed to Link.frame() as a
# UART driver hands them over (up to 256 bytes a read, a turn of the loop each), beside the
# reader it replaced (one awaited read per byte while it looks for a sync), in one run. The
# figure that matters: the share of the CPU a board needs to keep up with a 115200 baud
# line (11,520 bytes/s) of such input; over 100 % it falls behind and starves its servers.
#
#     mpremote connect PORT run bench/link.py              (the framework must be on the board)
#     .venv/bin/python bench/link.py --board mps2-an385    (host: unix board and QEMU, side by side)
import sys

if sys.implementation.name != "micropython":  # the host: run this file on the boards
    from _engines import host_main

    host_main(__file__)
    raise SystemExit
import asyncio
import gc
import time
from binascii import crc32

sys.path.append("lib")  # run from the repository with the unix port, too
from outstack.ota import link as L  # noqa: E402

try:
    SHORT = BENCH_SHORT  # type: ignore[name-defined]  # noqa: F821  set by a prior exec
except NameError:
    SHORT = 0
SIZE = (8 if SHORT else 48) * 1024  # bytes of hostile input per reader
READ = 256  # bytes a UART driver hands over at most per read
LINE = 11520  # bytes/s on a 115200 8N1 line


class Rng:
    def __init__(self, seed):
        self.x = seed

    def next(self, n):  # 0 <= r < n (xorshift32)
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x % n


def hostile(size, seed=20261208):
    rng, out = Rng(seed), bytearray()
    while len(out) < size:
        pick = rng.next(100)
        if pick < 40:
            out.extend(bytes(rng.next(256) for _ in range(1 + rng.next(1024))))
            continue
        n = (0, 4, 8, 36, rng.next(1041))[rng.next(5)]
        body = bytes((b"HDEASQRCNKXB"[rng.next(12)], n & 0xFF, n >> 8)) + bytes(
            rng.next(256) for _ in range(n))
        f = b"\xa5\x5a" + body + (crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")
        out.extend(f[: 1 + rng.next(len(f) - 1)] if pick > 75 else f)  # cut short
    return out[:size]


class Feed:
    # The bytes as a UART stream hands them to asyncio: up to READ per read, a turn each.
    def __init__(self, data):
        self.mv = memoryview(data)
        self.at = 0

    async def readinto(self, buf):
        await asyncio.sleep_ms(0)
        n = min(len(buf), READ, len(self.mv) - self.at)
        buf[:n] = self.mv[self.at : self.at + n]
        self.at += n
        return n


class PerByte(L.Link):
    # The reader before this one, as the baseline: it awaited a read of one byte at a time
    # until it had A5 5A, then the header, then the rest.
    async def _fill(self, mv):
        got = 0
        while got < len(mv):
            n = await self.r.readinto(mv[got:])
            if not n:
                raise EOFError("the update link closed")
            got += n

    async def _rest(self, mv):
        try:
            await asyncio.wait_for_ms(self._fill(mv), 2000)
            return True
        except asyncio.TimeoutError:
            return False

    async def frame(self):
        mv = self.mv
        while True:
            await self._fill(mv[0:1])
            if mv[0] != 0xA5:
                continue
            await self._fill(mv[0:1])
            if mv[0] != 0x5A:
                continue
            if not await self._rest(mv[0:3]):
                continue
            n = mv[1] | mv[2] << 8
            if n > L.MAX_PAYLOAD:
                continue
            if not await self._rest(mv[3 : 3 + n + 4]):
                continue
            crc = mv[3 + n] | mv[4 + n] << 8 | mv[5 + n] << 16 | mv[6 + n] << 24
            if crc32(mv[0 : 3 + n]) & 0xFFFFFFFF != crc:
                return 0
            return mv[0]


async def measure(cls, data):
    link = cls(Feed(data), None)
    good = 0
    gc.collect()
    t0 = time.ticks_us()
    try:
        while True:
            if await link.frame():
                good += 1
    except EOFError:
        pass
    return time.ticks_diff(time.ticks_us(), t0), good


def main():
    data = hostile(SIZE)
    rows = []
    for name, cls in (("chunked (now)", L.Link), ("a read per byte (before)", PerByte)):
        us, good = asyncio.run(measure(cls, data))
        rows.append(us)
        share = 100 * (us / 1e6) / (len(data) / LINE)
        print("link reader, %-24s : %d KB in %.1f ms, %d good frames; %.1f %% of the CPU for a "
              "115200 line of it" % (name, len(data) // 1024, us / 1000, good, share))
    print("link reader, before against now : %.0fx the time" % (rows[1] / max(rows[0], 1)))


main()
