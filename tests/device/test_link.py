# Device tests of the update link's frame reader (outstack/ota/link.py): what a hostile or
# noisy line gives it, fed in reads of any size as a UART or TCP stream hands them over.
import asyncio
from binascii import crc32
from outstack.ota import link as L


def frame(kind, payload=b""):
    body = bytes((kind, len(payload) & 0xFF, len(payload) >> 8)) + payload
    return b"\xa5\x5a" + body + (crc32(body) & 0xFFFFFFFF).to_bytes(4, "little")


class Feed:
    # Bytes in reads of at most `step`; then silent for ever (hold=True) or closed.
    def __init__(self, data, step=256, hold=False):
        self.data = data
        self.at = 0
        self.step = step
        self.hold = hold
        self.reads = 0

    async def readinto(self, buf):
        self.reads += 1
        if self.at >= len(self.data):
            if self.hold:
                await asyncio.sleep(3600)
            return 0
        await asyncio.sleep_ms(0)
        n = min(len(buf), self.step, len(self.data) - self.at)
        buf[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


async def frames(data, step=256, hold=False):
    link = L.Link(Feed(data, step, hold), None)
    got = []
    try:
        while True:
            kind = await (asyncio.wait_for_ms(link.frame(), 4000) if hold else link.frame())
            got.append((kind, bytes(link.payload()) if kind else b""))
    except (EOFError, asyncio.TimeoutError):
        pass
    return got, link


async def test_frames_come_through_whatever_the_read_sizes():
    data = frame(L.STATUS) + frame(L.CONSOLE, b"servers") + frame(L.DATA, bytes(range(256)) * 4)
    for step in (1, 2, 7, 64, 1049, 4096):
        got, link = await frames(data, step)
        assert got == [(L.STATUS, b""), (L.CONSOLE, b"servers"),
                       (L.DATA, bytes(range(256)) * 4)], step
        assert link.bad == 0


async def test_noise_between_frames_is_skipped_without_a_read_per_byte():
    noise = bytes((7 * i + 3) & 0xFF for i in range(3000)).replace(b"\xa5", b"\x00")
    feed = Feed(noise + frame(L.STATUS) + noise + frame(L.CONSOLE, b"help"))
    link = L.Link(feed, None)
    assert await link.frame() == L.STATUS
    assert await link.frame() == L.CONSOLE and bytes(link.payload()) == b"help"
    assert feed.reads < 40, feed.reads  # 6 KB of noise in 256-byte reads, not 6,000 reads


async def test_a_sync_after_a_stray_a5_is_found():
    got, _ = await frames(b"\xa5" + frame(L.STATUS) + b"\xa5\xa5" + frame(L.CONSOLE, b"x"))
    assert got == [(L.STATUS, b""), (L.CONSOLE, b"x")]


async def test_a_frame_inside_a_damaged_one_is_found_after_it():
    # A false sync whose length takes in the real frame behind it: the CRC fails, the frame
    # is counted bad (kind 0: the caller asks for a resend), and the real one still comes.
    real = frame(L.CONSOLE, b"servers")
    false = b"\xa5\x5a" + bytes((L.DATA, len(real) + 4, 0))
    got, link = await frames(false + real + b"\x00" * 8)
    assert got == [(0, b""), (L.CONSOLE, b"servers")], got
    assert link.bad == 1


async def test_an_oversized_length_is_counted_and_skipped():
    got, link = await frames(b"\xa5\x5a" + bytes((L.DATA, 0xFF, 0xFF)) + frame(L.STATUS))
    assert got == [(L.STATUS, b"")] and link.bad == 1


async def test_a_frame_cut_short_is_dropped_after_the_gap_and_the_next_is_read():
    # The sender falls silent inside a frame: after _GAP_MS it is dropped, and the frame
    # that was already behind its claimed length is read from what is in the buffer.
    cut = frame(L.DATA, bytes(600))[:300]
    got, link = await frames(cut + frame(L.STATUS), hold=True)
    assert got == [(L.STATUS, b"")], got
    assert link.bad == 1


async def test_a_frame_split_over_the_buffer_end_is_read_whole():
    # Frames that straddle where the buffer fills: what is not taken yet moves to the front.
    big = frame(L.DATA, bytes(i & 0xFF for i in range(1040)))
    data = frame(L.STATUS, b"abc") + big + frame(L.CONSOLE, b"q") + big
    for step in (100, 333, 1000):
        got, _ = await frames(data, step)
        assert [k for k, _ in got] == [L.STATUS, L.DATA, L.CONSOLE, L.DATA], step
        assert got[1][1] == got[3][1] == bytes(i & 0xFF for i in range(1040))
