# Device tests of crash reports (kept by default, in a bounded ring on flash, written a
# piece at a time), of the rule that sending to a server that does not run stops the
# sender instead of resetting the board, and of the memory estimate of a kept Timer.
import asyncio
import json
import os
from outstack import errors, log, reports, safemode
from outstack.kernel import Kernel
from outstack.server import Server
from outstack.system import System
from outstack.debug.mem import size_of, _W
from _util import serve


class Boom(Server):
    def init(self, cfg, state):
        self.n = 0

    def handle_call(self, msg, arg):
        if msg == "crash":
            raise ValueError(arg)
        self.n += 1
        return self.n


class Caller(Server):
    # Sends to "gone", which the config disables; does not catch NoSuchServer.
    def handle_call(self, msg, arg):
        self.try_cast("gone", "hello")
        return "sent"


TABLE = {"boom": {"factory": Boom}, "caller": {"factory": Caller, "grants": ("gone",)},
         "gone": {"factory": Boom}}


async def boot(servers, **top):
    with open("/cr.json", "w") as f:
        f.write(json.dumps({"servers": servers, "supervisor": dict(top, backoff_ms=0)}))
    s = System(TABLE, config_path="/cr.json").boot()
    s.escalated = []
    s.top.on_escalate = lambda sup, reason: s.escalated.append(reason)  # instead of a reset
    await asyncio.sleep_ms(5)
    return s


async def until(ok):
    for _ in range(5000):
        if ok():
            return
        await asyncio.sleep_ms(2)
    raise AssertionError("never happened")


async def crash(s, name, text):
    p = s.kernel.names[name]
    before = p.restarts
    c = s.kernel.client(name)
    try:
        await c.call("crash", text)
    except errors.ServerCrashed:
        pass
    await until(lambda: p.alive and p.restarts > before)


async def test_a_crash_is_logged_at_error_and_kept_with_its_traceback_without_recording():
    reports.clear()
    s = await boot({}, intensity=20)
    await crash(s, "boom", "first failure")
    kept, warnings = reports.load()
    assert warnings == [] and len(kept) == 1, (kept, warnings)
    r = kept[0]
    assert r["server"] == "boom" and r["error"] == "ValueError: first failure", r
    assert "Traceback" in r["tb"] and "handle_call" in r["tb"], r["tb"]
    assert r["restarts"] == 0 and r["boot"] == safemode.boots >= 1 and r["uptime_ms"] >= 0
    assert s.kernel.names["boom"].watch is None  # nothing was recording
    level, text = log.records("boom")[-1][1:]
    assert level == 40 and "ValueError: first failure" in text and "Traceback" in text, text


async def test_the_ring_keeps_the_last_reports_newest_first_each_bounded():
    reports.clear()
    s = await boot({}, intensity=40)
    for i in range(reports.KEEP + 3):
        await crash(s, "boom", "failure %d %s" % (i, "x" * (3000 if i == 5 else 0)))
    kept, _ = reports.load()
    assert len(kept) == reports.KEEP == len(reports.numbers())
    assert [r["error"][:20] for r in kept[:2]] == ["ValueError: failure ", "ValueError: failure "]
    assert kept[0]["error"].startswith("ValueError: failure %d" % (reports.KEEP + 2))
    assert [r["restarts"] for r in kept] == list(range(reports.KEEP + 2, 2, -1))
    for n in reports.numbers():
        assert os.stat(reports.PREFIX + "%d.json" % n)[6] < 1600  # the long message was cut
    assert reports.clear() == reports.KEEP and reports.load() == ([], [])


async def test_writing_a_report_yields_to_the_other_tasks():
    reports.clear()
    ticks = [0]

    async def other():
        while True:
            ticks[0] += 1
            await asyncio.sleep_ms(0)

    t = asyncio.create_task(other())
    await asyncio.sleep_ms(0)
    rec = {"server": "w", "error": "E", "tb": "y" * 800, "off": None}
    start = ticks[0]
    assert await reports.keep(rec)
    t.cancel()
    assert ticks[0] - start >= 6, ticks  # the other task ran between the pieces


def _fill():
    # Real files until the file system refuses more: a big one, then small ones.
    os.mkdir("/fill")
    chunk = bytes(4096)
    i = 0
    for size in (4096, 256, 16):
        while True:
            try:
                with open("/fill/%d" % i, "wb") as f:
                    i += 1
                    for _ in range(64):
                        f.write(chunk[:size])
            except OSError:
                break


def _unfill():
    for name in os.listdir("/fill"):
        os.remove("/fill/" + name)
    os.rmdir("/fill")


async def test_a_full_flash_costs_the_report_not_the_restart():
    reports.clear()
    s = await boot({}, intensity=20)
    try:
        _fill()
        got = await reports.keep({"server": "w", "error": "E", "tb": "t" * 800, "off": None})
        assert got is False, (os.statvfs("/"), os.stat("/fill"), os.listdir("/.outstack"))
        assert [n for n in os.listdir("/.outstack") if n.endswith(".new")] == []
        await crash(s, "boom", "on a full flash")  # said and restarted all the same
        assert s.kernel.names["boom"].alive and s.escalated == []
    finally:
        _unfill()
    await crash(s, "boom", "room again")
    kept = reports.load()
    assert kept[0] and kept[0][0]["error"] == "ValueError: room again", (kept, os.listdir("/.outstack"), os.statvfs("/"))


async def test_sending_to_a_server_that_does_not_run_stops_the_sender_not_the_board():
    reports.clear()
    s = await boot({"gone": {"enabled": False}}, intensity=1)
    c = s.kernel.client("caller")
    p = s.kernel.names["caller"]
    for _ in range(4):  # more than the restart budget: it is not spent
        try:
            await c.call("use")
        except errors.NoSuchServer as e:
            assert "'caller' is not running" in str(e) and "'gone'" in str(e), e
        except errors.ServerCrashed as e:
            assert "NoSuchServer" in str(e) and "'gone'" in str(e), e
        else:
            raise AssertionError("a send to a disabled server went through")
        await until(lambda: p.off is not None)
    assert s.escalated == [] and s.top.gave_up is None
    assert not p.alive and p.restarts == 0 and "'gone'" in p.off
    b = s.kernel.client("boom")
    await b.call("count")
    assert b.value == 1  # the others go on
    await until(lambda: reports.numbers())  # written a piece at a time, while others run
    r = reports.load()[0][0]
    assert r["server"] == "caller" and r["off"] == p.off and "NoSuchServer" in r["error"]
    # fixed by hand (the console's restart): it runs again
    assert await s.top.restart("caller") and p.alive and p.off is None


async def test_a_caller_that_catches_no_such_server_keeps_running():
    k = Kernel()
    p = serve(k, "polite", Boom, grants=("nobody",))
    try:
        p.server.try_cast("nobody", "hi")
    except errors.NoSuchServer as e:
        assert "'nobody'" in str(e)
    else:
        raise AssertionError("no NoSuchServer")
    assert p.alive


class Keeper(Server):
    def init(self, cfg, state):
        self.n = 0


def test_a_kept_timer_costs_a_few_words_not_the_kernel():
    k = Kernel()
    for i in range(6):  # a kernel with other servers and timers: what a walk must not reach
        serve(k, "other%d" % i, Keeper).server.every(1000, "x")
    s = serve(k, "keeper", Keeper).server
    before = size_of(s)[0]
    s.t = s.every(1000, "tick")
    grew = size_of(s)[0] - before
    assert 0 < grew <= 40 * _W, grew  # the Timer and its attributes: about 256 bytes at most on 64-bit
    s.subs = s._p.subs
    s.spec = s._p.spec
    assert size_of(s)[0] - before <= 60 * _W  # specs and subscriptions are shared too


async def test_a_server_stopped_for_a_config_error_stays_stopped_when_its_siblings_restart():
    reports.clear()
    s = await boot({"gone": {"enabled": False}}, strategy="one_for_all", intensity=10)
    p = s.kernel.names["caller"]
    try:
        await s.kernel.client("caller").call("use")
    except errors.ServerCrashed:
        pass
    await until(lambda: p.off is not None)
    await crash(s, "boom", "the others restart")  # one_for_all: every child but the stopped one
    assert not p.alive and p.off is not None and s.escalated == []
