# Device tests of the guards: crash record, boot-loop streak and quarantine, software
# watchdogs over the hardware one, runaway-handler detection.
import asyncio
import time
from outstack import board, crashlog, safemode, errors
from outstack.kernel import Kernel
from outstack.server import Server
from outstack.spec import Spec
from outstack.supervisor import Supervisor
from outstack.guard import Guard


def test_crash_record_round_trip():
    crashlog.save({"kind": "runaway", "server": "x", "msg": "go", "pending": True})
    rec, warn = crashlog.load()
    assert warn is None and rec["server"] == "x" and rec["msg"] == "go"
    crashlog.clear()
    assert crashlog.load() == (None, None)


def test_corrupt_record_is_ignored_with_a_warning():
    crashlog.save({"kind": "runaway", "server": "x"})
    with open(crashlog.RECORD) as f:
        text = f.read()
    with open(crashlog.RECORD, "w") as f:
        f.write(text.replace('"x"', '"y"'))  # one flipped character
    rec, warn = crashlog.load()
    assert rec is None and "corrupt" in warn, warn
    with open(crashlog.RECORD, "w") as f:
        f.write("garbage")
    assert "not a crash record" in crashlog.load()[1]
    crashlog.clear()


def test_three_crash_resets_mean_safe_mode_with_the_culprit_quarantined():
    safemode.clear_quarantine()
    for i in range(3):
        safemode.record("runaway", None, "go", 10)
        rec, _ = crashlog.load()
        rec["server"] = "culprit"
        crashlog.save(rec)
        check = safemode.BootCheck(crashes=3, window_ms=600000).run()
        assert check.safe == (i == 2), (i, check.state)
    assert check.state["quarantine"] == ["culprit"]
    assert check.record["cause"] == "PWRON" and check.record["pending"] is False
    again = safemode.BootCheck().run()  # a boot with no new crash keeps the quarantine
    assert again.state["quarantine"] == ["culprit"] and again.state["streak"] == 3
    assert safemode.clear_quarantine() == []
    assert safemode.BootCheck().run().safe is False


def test_crashes_spread_over_more_than_the_window_are_no_boot_loop():
    safemode.clear_quarantine()
    for _ in range(3):
        safemode.record("escalation", None, None)
        rec, _ = crashlog.load()
        rec["uptime_ms"] = 300000  # each boot ran five minutes
        crashlog.save(rec)
        check = safemode.BootCheck(crashes=3, window_ms=600000).run()
    assert check.state["streak"] == 3 and not check.safe


class Ticker(Server):
    def init(self, config, state):
        self.every(20, "tick")

    def handle_cast(self, msg, arg):
        if msg == "tick" and self._p.spec.config.get("checks_in"):
            self.checkin()


class Hog(Server):
    def handle_cast(self, msg, arg):
        t = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), t) < arg:
            pass


async def test_software_watchdog_restarts_a_silent_server_and_keeps_feeding():
    k = Kernel()
    sup = Supervisor([Spec("good", Ticker, watchdog_ms=100, config={"checks_in": True}),
                      Spec("silent", Ticker, watchdog_ms=100)], intensity=100)
    sup.start(k)
    k.start()
    g = Guard(k, 2000)
    task = asyncio.create_task(g.run())
    for _ in range(100):  # two expiries take about 300 ms; a slow board gets longer
        await asyncio.sleep_ms(50)
        if k.names["silent"].restarts >= 2 and g.fed >= 3:
            break
    task.cancel()
    g.stop()
    assert k.names["silent"].restarts >= 2, k.names["silent"].restarts
    assert k.names["good"].restarts == 0
    assert g.expired >= 2 and g.sick is None and g.fed >= 3


async def test_runaway_handler_is_recorded_before_the_watchdog_fires():
    crashlog.clear()
    k = Kernel()
    sup = Supervisor([Spec("hog", Hog)])
    sup.start(k)
    k.start()
    seen = []
    g = Guard(k, 8000, runaway_ms=100,
              record=lambda kind, p, msg, ms: (seen.append((kind, p.name, msg, ms)),
                                               safemode.record(kind, p, msg, ms, kernel=k)))
    task = asyncio.create_task(g.run())
    k.client("hog").try_cast("grind", 400)
    await asyncio.sleep_ms(500)
    task.cancel()
    g.stop()
    assert len(seen) == 1 and seen[0][:3] == ("runaway", "hog", "grind"), seen
    assert 100 <= seen[0][3] < 400
    rec, _ = crashlog.load()
    assert rec["server"] == "hog" and rec["msg"] == "grind" and rec["pending"]
    crashlog.clear()


def test_watchdog_timeout_above_the_limit_is_refused():
    from outstack import board

    limit = board.WDT_MAX_MS
    try:
        Guard(Kernel(), limit + 612)
    except ValueError as e:
        assert "%d ms" % limit in str(e), str(e)
    else:
        raise AssertionError("%d ms accepted on a board whose limit is %d ms" % (limit + 612, limit))


def test_watchdog_expired_is_an_error_type():
    assert issubclass(errors.WatchdogExpired, errors.OutstackError)
