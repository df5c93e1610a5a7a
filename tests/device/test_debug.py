# Device tests of field debugging: per-server logs (micropython-lib logging), recording with
# checkpoints, crash records on flash, replay of a record, fault injection, the memory
# estimate and the console's commands run against a live System.
import asyncio
import json
import os
from outstack import log, minilog
from outstack.kernel import Kernel
from outstack.server import Server
from outstack.system import System
from outstack.debug import record, replay, fault
from outstack.debug.console import answer, answer_for
from outstack.debug.mem import size_of
from outstack.debug.watch import watch
from _util import serve


class Counter(Server):
    # Crashes when it has counted `limit` and is then told "boom": needs its whole history.
    def init(self, config, state):
        self.total = state or 0
        self.limit = config.get("limit", 5)

    def handle_cast(self, msg, arg):
        if msg == "boom" and self.total >= self.limit:
            raise ValueError("total %d reached" % self.total)
        self.total += arg or 0

    def handle_call(self, msg, arg):
        return self.total


class Saver(Counter):
    def save(self):
        return self.total


class Talker(Server):
    def init(self, config, state):
        self.log.info("up with %d", 7)

    def handle_cast(self, msg, arg):
        self.log.debug("got %r", msg)
        self.log.warning("careful: %s", msg)


async def _feed(k, name, msgs):
    c = k.client(name)
    for m, a in msgs:
        c.try_cast(m, a)
        await asyncio.sleep_ms(0)
    await asyncio.sleep_ms(5)


async def test_server_logs_go_through_logging_into_a_ring_with_levels_set_at_run_time():
    k = Kernel()
    serve(k, "talk", Talker)
    k.start()
    assert log.backend() == "logging"  # micropython-lib's package is on the board's /lib
    await _feed(k, "talk", [("x", None)])
    texts = [(lvl, text) for _, lvl, text in log.records("talk")]
    assert texts == [(20, "up with 7"), (30, "careful: x")], texts  # DEBUG is below INFO
    log.set_level("talk", "debug")
    await _feed(k, "talk", [("y", None)])
    assert [t for _, _, t in log.records("talk")][-2:] == ["got 'y'", "careful: y"]
    try:
        log.set_level("talk", "LOUD")
        raise AssertionError("an unknown level was taken")
    except ValueError as e:
        assert "unknown log level 'LOUD'" in str(e)


def test_the_fallback_logger_has_the_same_api():
    lg = minilog.getLogger("fb")
    got = []

    class H(minilog.Handler):
        def emit(self, r):
            got.append((r.levelno, r.message))  # formatted by the logger, as micropython-lib's

    lg.addHandler(H())
    lg.info("hidden %d", 1)  # default level WARNING, as in CPython and micropython-lib
    lg.setLevel(minilog.DEBUG)
    lg.debug("shown %d", 2)
    lg.error("bad")
    assert got == [(10, "shown 2"), (40, "bad")]
    assert minilog.getLogger("fb") is lg


async def test_recording_without_save_replays_only_from_the_start():
    k = Kernel()
    p = serve(k, "c", Counter)
    k.start()
    watch(k, "c", record=4)
    await _feed(k, "c", [("add", 1)] * 9 + [("boom", None)])
    ev = p.last_ring
    assert [m for _, _, m, _ in ev.msgs()] == ["add", "add", "add", "boom"]
    assert not ev.exact and ev.lost == 6  # no save(): the first 6 are gone


async def test_recording_checkpoints_a_server_with_save_so_replay_starts_there():
    k = Kernel()
    p = serve(k, "s", Saver)
    k.start()
    watch(k, "s", record=4)
    await _feed(k, "s", [("add", 1)] * 9 + [("boom", None)])
    ev = p.last_ring
    assert ev.exact and ev.lost == 0
    msgs = list(ev.msgs())
    assert ev.state + sum(a for _, _, m, a in msgs if m == "add") == 9, (ev.state, msgs)
    assert msgs[-1][2] == "boom" and len(msgs) <= 4


async def test_a_crash_record_goes_to_flash_and_replays_to_the_same_error():
    k = Kernel()
    p = serve(k, "s", Saver, config={"limit": 10})
    p.spec.config = {"limit": 10}
    k.start()
    watch(k, "s", record=4)
    await _feed(k, "s", [("add", 2)] * 6 + [("boom", None)])
    assert await record.save(p, p.last_error)
    ok, warning = record.check("s")
    assert ok and warning is None
    whole = json.loads(b"".join(record.pieces("s")))
    summary = record.summaries()[0]["s"]
    assert summary["error"] == "ValueError: total 12 reached" and "msgs" not in summary
    assert whole["factory"] == "test_debug:Saver" and whole["exact"]
    got = replay.replay(whole)
    assert got["crashed_at"] == len(whole["msgs"]) - 1
    assert got["error"] == "ValueError: total 12 reached"
    assert got["tb"].split("run_handler")[-1] == whole["tb"].split("run_handler")[-1]
    # a changed byte breaks the seal: the record is refused, not replayed
    path = record.PREFIX + "s.json"
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[-5] ^= 1
    with open(path, "wb") as f:
        f.write(data)
    ok, warning = record.check("s")
    assert not ok and "corrupt" in warning
    assert record.summaries() == ({}, [warning])
    record.clear()
    assert record.summaries() == ({}, [])


def test_replay_says_when_an_argument_cannot_be_rebuilt():
    rec = {"server": "c", "factory": "test_debug:Counter", "config": {}, "state": "None",
           "msgs": [["cast", 0, "'add'", "<Thing object at 0x7f>"]]}
    got = replay.replay(rec)
    assert "cannot be rebuilt" in got["error"] and "crashed_at" not in got


async def test_injected_faults_crash_slow_and_leak_and_a_restart_clears_them():
    sysm = System({"c": {"factory": Counter}}, config_path="/nonexistent.json", repl=False)
    sysm.boot()
    k = sysm.kernel
    p = k.names["c"]
    before = size_of(p.server)[0]
    fault.inject(sysm, "c", "leak", 1000)
    await _feed(k, "c", [("add", 1)] * 5)
    grown = size_of(p.server)[0]
    assert grown - before >= 5000, (before, grown)
    fault.inject(sysm, "c", "slow", 30)
    await _feed(k, "c", [("add", 1)])
    assert p.max_us >= 30000 and p.over_budget >= 1, (p.max_us, p.over_budget, p.handled)
    fault.inject(sysm, "c", "crash")
    for _ in range(100):  # the restart comes after the supervisor's backoff: wait for it
        await asyncio.sleep_ms(10)
        if p.restarts and p.alive:
            break
    assert p.restarts == 1 and p.alive and p.fault is None
    assert type(p.last_error).__name__ == "InjectedFault"
    assert size_of(p.server)[0] < grown, (size_of(p.server), before, grown)  # the leak went with the old server
    try:
        fault.inject(sysm, "c", "hang")
        raise AssertionError("a hang was armed with no watchdog to end it")
    except Exception as e:
        assert "no watchdog is armed" in str(e)
    await sysm.top.stop()


def test_the_memory_estimate_grows_with_what_a_server_keeps():
    class Keeper(Server):
        def init(self, config, state):
            self.kept = []

    s = Keeper()
    s.init({}, None)
    a = size_of(s)[0]
    s.kept.append(bytearray(4096))
    b = size_of(s)[0]
    s.kept.extend(list(range(2000)))
    c = size_of(s)[0]
    assert 4096 <= b - a <= 4096 + 256 and c > b, (a, b, c)


async def _cmd(sysm, line):
    return json.loads("".join(p if isinstance(p, str) else p.decode()
                              for p in await answer(sysm, line)))


async def test_console_commands_answer_and_refuse_bad_input_without_harm():
    table = {"c": {"factory": Counter, "provides": ("c",)},
             "t": {"factory": Talker, "depends": ("c",), "grants": ("c",)}}
    sysm = System(table, config_path="/nonexistent.json", repl=False)
    sysm.boot()
    k = sysm.kernel
    await _feed(k, "c", [("add", 1)] * 3)
    rows = {r["name"]: r for r in (await _cmd(sysm, "servers"))["ok"]["servers"]}
    assert rows["c"]["in"] == 3 and rows["c"]["state"] == "running" and rows["c"]["high"] >= 1
    assert (await _cmd(sysm, "info c"))["ok"]["spec"]["provides"] == ["c"]
    g = (await _cmd(sysm, "graph"))["ok"]
    assert [(c["name"], c["depends"]) for c in g["children"]] == [("c", []), ("t", ["c"])]
    assert (await _cmd(sysm, "level t DEBUG"))["ok"]["level"] == 10
    assert (await _cmd(sysm, "trace c on"))["ok"]["trace"] is True
    await _feed(k, "c", [("add", 1)])
    assert [m for _, s, m in (await _cmd(sysm, "trace"))["ok"]["trace"] if s == "c"] == ["add"]
    assert (await _cmd(sysm, "record c 8"))["ok"]["record"] == 8
    said = (await _cmd(sysm, "restart c"))["ok"]
    assert said["restarts"] == 1 and said["state"] == "running"
    for line, needle in (("bogus", "unknown command 'bogus'"), ("info nope", "no server 'nope'"),
                         ("log", "wrong arguments"), ("trace c maybe", "say on or off"),
                         ("record c -3", "too small"), ("record c many", "not a number"),
                         ("fault c explode", "unknown fault 'explode'"),
                         ("fault c slow", "needs a positive amount"),
                         ("level c LOUD", "unknown log level"), ("", "empty command"),
                         ("recording c", "no crash record of 'c'"),
                         ("crashes sideways", "say clear, or nothing")):
        err = (await _cmd(sysm, line)).get("error", "")
        assert needle in err, (line, err)
    assert k.names["c"].alive and k.names["t"].alive  # refused commands touched nothing
    await sysm.top.stop()


async def test_a_link_without_the_debug_right_answers_with_an_error_not_a_crash():
    k = Kernel()
    p = serve(k, "link", Counter)  # its spec lists no rights
    said = json.loads("".join(await answer_for(p.server, "servers")))
    assert "'link' has no 'debug' right" in said["error"] and p.alive
