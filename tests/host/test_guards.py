"""Guards on a virtual board, driven as in the field: a hung handler and the hardware
watchdog, the crash record read with `outstack crashlog`, a boot loop ending in safe mode,
clearing the quarantine, a corrupt record, and a soak with every server busy."""

import json
import time

from tests.conftest import COUNTER_MAIN, number, outstack, text, typed, wait_text

FIRMWARE = COUNTER_MAIN + """
class Hang(Server):
    def init(self, config, state):
        print("hang starting")
        self.after(300, "spin")

    def handle_cast(self, msg, arg):
        while True:
            pass

TABLE = {"hang": {"factory": Hang},
         "ota": {"factory": Counter, "essential": True},
         "debug": {"factory": Counter, "essential": True}}
System(TABLE).run_forever()
"""
CONFIG = json.dumps({"watchdog_ms": 1000, "safe_mode": {"crashes": 3, "window_ms": 600000}})


def test_hung_handler_watchdog_crash_record_safe_mode_and_clear(make_board):
    vb = make_board(files={"/main.py": FIRMWARE, "/config.json": CONFIG})
    fired = vb.wait_for("wdt-reset", timeout=10)
    back = vb.wait_for("booted", vb.events.index(fired))
    took = back.t - vb.last_feed_before(fired)
    print(f"hung handler: board back {took * 1000:.0f} ms after the last feed (watchdog 1000 ms)")
    assert back.detail == "WDT" and took >= 1.0, took  # never early; how late is load

    mark = vb.mark()
    log = outstack("crashlog", "--port", vb.usb_port)
    assert log.returncode == 0, log.stderr
    assert "last crash: runaway (reset cause WDT)" in log.stdout, log.stdout
    assert "server       hang" in log.stdout and "message      spin" in log.stdout, log.stdout

    # Crash-resets keep coming (the hang is in the firmware): the third makes safe mode.
    start = len(vb.output)
    wait_text(vb, "SAFE MODE", start, timeout=30)
    wait_text(vb, ">>> ", start)
    assert "quarantined: hang" in text(vb, start)
    n1 = number(vb, "await call('ota', 'n')")
    time.sleep(0.3)
    n2 = number(vb, "await call('ota', 'n')")
    assert n2 > n1 and number(vb, "await call('debug', 'n')") > 0  # essentials serve
    assert "ServerDown" in typed(vb, "await call('hang', 'n')") or "NoSuchServer" in text(vb)
    resets = len([e for e in vb.events[mark:] if e.kind == "wdt-reset"])
    time.sleep(1.5)
    assert len([e for e in vb.events[mark:] if e.kind == "wdt-reset"]) == resets  # no more

    cleared = outstack("crashlog", "--port", vb.usb_port, "--clear")
    assert cleared.returncode == 0 and "quarantined: hang" in cleared.stdout, cleared.stdout
    start = len(vb.output)
    wait_text(vb, "hang starting", start)  # back in normal mode, the culprit runs again
    assert "SAFE MODE" not in text(vb, start)


def test_corrupt_crash_record_is_ignored_and_boot_continues(make_board):
    bad = 'OSB1 00000000\n{"kind": "runaway", "server": "x"}'
    vb = make_board(files={"/main.py": FIRMWARE.replace('"hang": {"factory": Hang},', ""),
                           "/config.json": CONFIG, "/.outstack/crash.json": bad})
    wait_text(vb, ">>> ")
    said = text(vb)
    assert "/.outstack/crash.json is corrupt (CRC mismatch): ignored" in said, said
    assert number(vb, "await call('ota', 'n')") >= 0


SOAK = """
from outstack.system import System
from outstack.server import Server
import time

class Busy(Server):
    def init(self, config, state):
        self.n = 0
        self.every(5, "work")

    def handle_cast(self, msg, arg):
        t = time.ticks_us()
        while time.ticks_diff(time.ticks_us(), t) < 3000:
            pass
        self.n += 1
        self.checkin()

    def handle_call(self, msg, arg):
        return self.n

TABLE = {"b%d" % i: {"factory": Busy, "watchdog_ms": 300} for i in range(5)}
System(TABLE).run_forever()
"""


def test_sixty_second_soak_with_every_server_busy_has_no_watchdog_reset(make_board):
    vb = make_board(files={"/main.py": SOAK, "/config.json": json.dumps({"watchdog_ms": 500})})
    wait_text(vb, ">>> ")
    mark = vb.mark()
    time.sleep(60)
    kinds = [e.kind for e in vb.events[mark:]]
    assert "wdt-reset" not in kinds and "reset" not in kinds and "crash" not in kinds, kinds
    # A busy host gives the board less CPU: each server must have kept working, however much.
    counts = [number(vb, f"await call('b{i}', 'n')") for i in range(5)]
    fed = len([k for k in kinds if k == "wdt-fed"])
    print(f"soak: 60 s, {sum(counts)} handlers of 3 ms, {fed} watchdog feeds, no reset")
    assert min(counts) >= 100, counts
    assert fed >= 60 * 1000 // 500 - 1  # no reset with a 500 ms limit: fed at least that often

