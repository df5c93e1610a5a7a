"""Power-cut torture of an install: the power fails at every single flash write of a live
update, one boot per write. After each, the board boots, runs the old or the new version
(never a mix), and accepts the next update."""

import re
import time

MAIN = '''
import asyncio
from outstack.system import System
from outstack.ota import slots, install

NEW = b"""
from outstack.server import Server
class Greet(Server):
    def handle_call(self, msg, arg):
        return "v%d"
"""
TABLE = {"greet": {"factory": "app.cutgreet:Greet"}}

async def main():
    s = System(TABLE, config_path="/none.json", repl=False).boot()
    await asyncio.sleep_ms(10)
    c = s.kernel.client("greet")
    await c.call("v")
    cur = slots.read()[0]
    print("RUNNING", cur, c.value)
    said = await install.install(s, cur + 1, [("app/cutgreet.py", [NEW % (cur + 2)])], health_ms=50)
    print("INSTALL", said)

asyncio.run(main())
'''
V1 = '''
from outstack.server import Server
class Greet(Server):
    def handle_call(self, msg, arg):
        return "v1"
'''
RUNNING = re.compile(rb"RUNNING (\d+) v(\d+)")


def _boot(vb, timeout=10.0):
    mark, start = vb.mark(), len(vb.output)
    vb.power_on()
    vb.wait_for("booted", mark, timeout)
    return start


def _wait(vb, start, needle, timeout=10.0):
    # The whole line that holds `needle`: a print may reach the host in several chunks.
    end = time.monotonic() + timeout
    while not _line(vb, start, needle) and vb.state == "on" and time.monotonic() < end:
        time.sleep(0.005)
    return _line(vb, start, needle)


def _line(vb, start, needle):
    text = bytes(vb.output[start:])
    i = text.find(needle)
    return i >= 0 and text.find(b"\n", i) >= 0


def test_power_cut_at_every_flash_write_of_an_install(make_board):
    vb = make_board(files={"/main.py": MAIN, "/app/cutgreet.py": V1}, start=False)
    total, seen = cut_at_every_write(vb)
    print(f"{total} cuts: old version after {seen['old']}, new after {seen['new']}; "
          "every boot accepted the next update")
    # The pointer's one rename to "good" is the install's last flash operation, so a cut at
    # any of them leaves the old version (a trial is rolled back at boot): never a broken one.


_BLOCK_PAGES = 16  # 256-byte pages in a 4 KB flash block: a whole erase or program


def cut_at_every_write(vb, timeout=10.0):
    """Count the flash writes of a boot and an install on `vb` (made, not started, on an
    image holding MAIN and V1), then cut the power at each of them in turn, each time on the
    pristine image; after each cut the board runs the old or the new version and installs
    the next. Returns (writes, {"old": boots on the old version, "new": on the new}).
    Either engine: a boot is the power-on's (the QEMU board says `booted` only once main.py
    has returned)."""
    pristine = vb.image.read_bytes()
    vb.start()
    vb.wait_for("spawn")
    assert _wait(vb, 0, b"INSTALL installed update 1", timeout), vb.output[-2000:]
    total = vb.flash_writes  # boot + install, counted by the flash model
    vb.cut_power()
    vb.wait_for("power-off")
    print(f"an install from power-on takes {total} flash erase/program operations")
    seen = {"old": 0, "new": 0}
    for k in range(1, total + 1):
        vb.image.write_bytes(pristine)
        mark = vb.mark()
        # the last write (the pointer's rename to "good") is cut once it is whole: a cut
        # inside it after a random 0-16 pages left nothing of it 1 time in 17, and then no
        # cut ever covered the new version
        vb.power_on(cut_after=k, cut_pages=_BLOCK_PAGES if k == total else None)
        assert vb.wait_for("power-off", mark, timeout=2 * timeout).detail == \
            f"cut during flash write {k}"
        start = _boot(vb, timeout)  # power back, no cut this time
        assert _wait(vb, start, b"INSTALL", timeout), (k, vb.output[start:][-1500:])
        found = RUNNING.search(vb.output[start:])
        seq, version = int(found.group(1)), int(found.group(2))
        assert (seq, version) in ((0, 1), (1, 2)), (k, seq, version)  # old or new, whole
        seen["old" if seq == 0 else "new"] += 1
        # (the line may still be arriving: wait for it whole, never judge half of it)
        assert _wait(vb, start, b"INSTALL installed update", timeout), (k, vb.output[start:][-800:])
        vb.cut_power()
        vb.wait_for("power-off", vb.mark() - 1)
    assert seen["old"] + seen["new"] == total
    assert seen["new"], seen  # the cut after the last write leaves the new version
    return total, seen
