# Device tests of the demo firmware (firmware/app): processing's window and summaries,
# storage's batches, rotation and flush on stop, the sensor's period, the uplink backlog,
# config selection through System, the status line, and an allocation-free summary path.
import asyncio
import json
import machine
import micropython
import os
import re
import time
import app
from app.summary import Summary, put_line
from outstack.kernel import Kernel
from outstack.server import Server, Proc
from outstack.spec import Spec
from outstack.supervisor import Supervisor
from outstack.system import System
from _util import has_module, need, until

ADC = "machine.ADC (the sensor's input)"

TMP = "/t_demo"


class Rec(Server):
    # Records what it gets; summaries are copied (processing reuses the records).
    def init(self, config, state):
        self.got = []

    def handle_cast(self, msg, arg):
        if isinstance(arg, Summary):
            arg = (arg.seq, arg.n, arg.avg, arg.lo, arg.hi, arg.last, arg.missed)
        self.got.append((msg, arg, time.ticks_ms()))

    def handle_call(self, msg, arg):
        return (0, 0, 0)


def factory(name):
    mod, _, cls = app.TABLE[name]["factory"].partition(":")
    return getattr(__import__(mod, None, None, (cls,)), cls)


def spec(name, inbox=None, **config):
    # The firmware's own spec for `name`, with some settings changed.
    kw = dict(app.TABLE[name])
    del kw["factory"]
    cfg = dict(kw.pop("config"))
    cfg.update(config)
    if inbox:
        kw["inbox"] = inbox
    return Spec(name, factory(name), config=cfg, **kw)


def run(*specs):
    k = Kernel()
    sup = Supervisor(list(specs))
    sup.start(k)
    k.start()
    return k, sup


def server(k, name):
    return k.names[name].server


def fresh(path):
    for p in (path, path + ".1"):
        try:
            os.remove(p)
        except OSError:
            pass
    return path


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def summary(seq, avg=100, lo=50, hi=150):
    s = Summary()
    s.seq, s.ms, s.n = seq, 1000 * seq, 8
    s.avg, s.lo, s.hi = avg, lo, hi
    s.last = hi
    return s


async def call(k, name, msg, arg=None):
    c = k.client(name)
    await c.call(msg, arg)
    return c.value


# ----- processing ----------------------------------------------------------------------------
async def test_processing_window_math_and_summaries():
    k, sup = run(spec("processing", window=4, every=2),
                 Spec("storage", Rec), Spec("listener", Rec, subscribes=("summaries",)))
    p = k.names["processing"]
    for v in (10, 20, 30, 40, 50, 60, 70):
        p.deliver("sample", v, None, 0)
    await until(lambda: len(server(k, "listener").got) >= 3 and len(server(k, "storage").got) >= 3)
    want = [(1, 2, 15, 10, 20, 20, 0), (2, 4, 25, 10, 40, 40, 0), (3, 4, 45, 30, 60, 60, 0)]
    stored = [arg for msg, arg, t in server(k, "storage").got]
    heard = [arg for msg, arg, t in server(k, "listener").got]
    assert stored == want, stored
    assert heard == want, heard
    assert await call(k, "processing", "stats") == (7, 3, 0, 0)


async def test_processing_counts_lag_and_missing_storage():
    k = Kernel()
    pub = Proc(k, Spec("pub", Rec, publishes=("readings",)))
    pub.attach(Rec())
    sup = Supervisor([spec("processing", inbox=2, window=8, every=2)])
    sup.start(k)  # no storage in this tree: summaries it cannot take are counted
    for v in range(6):
        pub.publish("readings", "sample", 100 + v)  # 2 fit, 4 lag
    k.start()
    await asyncio.sleep_ms(20)
    for v in range(2):
        pub.publish("readings", "sample", 200)
    await asyncio.sleep_ms(20)
    samples, summaries, missed, unstored = await call(k, "processing", "stats")
    assert (samples, summaries, missed, unstored) == (4, 2, 4, 2), (samples, summaries, missed)
    assert server(k, "processing").ring[1].missed == 4  # every summary says so


# ----- storage -------------------------------------------------------------------------------
async def test_storage_batches_lines_and_flushes_on_stop():
    path = fresh(TMP + "/a/b/readings.csv")  # parent directories are made
    k, sup = run(spec("storage", path=path, batch=3))
    st = k.client("storage")
    for i in (1, 2):
        st.try_cast("summary", summary(i))
    await asyncio.sleep_ms(10)
    assert read(path) is None  # still in RAM: the flash is spared
    assert await call(k, "storage", "stats") == (0, 0, 0)
    st.try_cast("summary", summary(3, avg=7, lo=-2, hi=12345))
    st.try_cast("summary", summary(4))
    await asyncio.sleep_ms(10)
    text = read(path)
    assert text == ("seq,ms,avg,min,max,missed\n1,1000,100,50,150,0\n2,2000,100,50,150,0\n"
                    "3,3000,7,-2,12345,0\n"), text
    assert await call(k, "storage", "stats") == (3, len(text), 1)
    await sup.stop()  # terminate flushes what is left
    assert read(path) == text + "4,4000,100,50,150,0\n"


async def test_storage_rotates_past_max_bytes_and_appends_to_an_old_file():
    path = fresh(TMP + "/rot.csv")
    k, sup = run(spec("storage", path=path, batch=1, max_bytes=120))
    for i in range(1, 7):
        k.client("storage").try_cast("summary", summary(i))
        await asyncio.sleep_ms(5)
    head = "seq,ms,avg,min,max,missed\n"
    lines = ["%d,%d000,100,50,150,0\n" % (i, i) for i in range(1, 8)]
    assert read(path + ".1") == head + "".join(lines[:4])  # 26 + 4 x 20 = 106 <= 120
    assert read(path) == head + "".join(lines[4:6])
    await sup.stop()
    k, sup = run(spec("storage", path=path, batch=1, max_bytes=120))  # a reboot: no new header
    k.client("storage").try_cast("summary", summary(7))
    await asyncio.sleep_ms(5)
    assert read(path) == head + "".join(lines[4:7])


# ----- sensor ----------------------------------------------------------------------------------
async def test_sensor_publishes_at_its_period():
    need(hasattr(machine, "ADC"), ADC)
    k, sup = run(spec("sensor", period_ms=100), Spec("rec", Rec, subscribes=("readings",)))
    await asyncio.sleep_ms(560)
    got = server(k, "rec").got
    assert len(got) == 5, got
    assert all(msg == "sample" and 0 <= v <= 65535 for msg, v, t in got), got
    gaps = [time.ticks_diff(got[i + 1][2], got[i][2]) for i in range(len(got) - 1)]
    assert all(90 <= g <= 115 for g in gaps), gaps
    assert await call(k, "sensor", "stats") == (5, got[-1][1])


# ----- uplink ----------------------------------------------------------------------------------
async def test_uplink_backlog_keeps_the_newest_and_counts_drops():
    k, sup = run(spec("uplink", backlog=3))  # no ssid: it never connects
    for i in range(1, 6):
        k.client("uplink").try_cast("summary", summary(i))
    await asyncio.sleep_ms(10)
    assert await call(k, "uplink", "stats") == (0, 3, 2, False)
    u = server(k, "uplink")
    kept = [bytes(u.slots[(u.head + i) % 3][: u.lens[(u.head + i) % 3]]) for i in range(3)]
    assert kept == [b"3,3000,100,50,150,0\n", b"4,4000,100,50,150,0\n",
                    b"5,5000,100,50,150,0\n"], kept


async def test_uplink_sends_lines_to_a_collector():
    need(has_module("socket"), "socket module (no network stack for the uplink)")
    got = []

    async def collector(r, w):
        while True:
            line = await r.readline()
            if not line:
                break
            got.append(line)
        w.close()

    port = 20000 + time.ticks_us() % 20000  # boards of parallel test runs share the loopback
    srv = await asyncio.start_server(collector, "127.0.0.1", port)
    k, sup = run(spec("uplink", ssid="outstack", key="outstack-key", port=port))
    for i in (1, 2):
        k.client("uplink").try_cast("summary", summary(i))  # before the link is up: kept
    for _ in range(100):
        if len(got) == 2:
            break
        await asyncio.sleep_ms(20)
    k.client("uplink").try_cast("summary", summary(3))
    await asyncio.sleep_ms(50)
    assert got == [b"1,1000,100,50,150,0\n", b"2,2000,100,50,150,0\n",
                   b"3,3000,100,50,150,0\n"], got
    assert await call(k, "uplink", "stats") == (3, 0, 0, True)
    await sup.stop()
    srv.close()


# ----- the whole table through System and /config.json ----------------------------------------
def boot(cfg):
    path = TMP + "/config.json"
    with open(path, "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg))
    return System(app.TABLE, config_path=path, defaults=app.DEFAULTS).boot()


async def test_config_selects_servers_and_a_disabled_one_never_starts():
    need(hasattr(machine, "ADC"), ADC)
    s = boot({"servers": {"sensor": {"period_ms": 50}, "processing": {"every": 2},
                          "storage": {"path": fresh(TMP + "/sel.csv"), "batch": 1},
                          "status": {"enabled": False}, "uplink": {"enabled": False},
                          "ota": {"enabled": False}}})
    await asyncio.sleep_ms(320)
    assert s.errors == []
    assert sorted(s.kernel.names) == ["processing", "sensor", "storage"]
    lines, size, flushes = await call(s.kernel, "storage", "stats")
    assert 2 <= lines <= 4 and flushes == lines, lines
    await s.top.stop()


async def test_unknown_server_in_config_is_reported_and_the_rest_of_it_runs():
    s = boot({"servers": {"sensr": {}, "uplink": {"enabled": False}}})
    await asyncio.sleep_ms(10)
    assert len(s.errors) == 1, s.errors
    assert "'sensr'" in s.errors[0] and "sensor" in s.errors[0] and "ignored" in s.errors[0]
    assert sorted(s.kernel.names) == ["ota", "processing", "sensor", "status", "storage"]
    await s.top.stop()


# ----- status ----------------------------------------------------------------------------------
async def test_status_line_says_reading_storage_uplink_and_memory():
    need(hasattr(machine, "ADC"), ADC)
    from outstack import hal
    from app.status import uplink_text

    need(hasattr(machine, "Pin"), "machine.Pin (the status LED)")
    k, sup = run(spec("storage", path=fresh(TMP + "/st.csv"), batch=1),
                 spec("status", every_ms=100))
    lines = []
    server(k, "status").out = lines.append
    s = summary(1, avg=30210, hi=31872)
    k.client("storage").try_cast("summary", s)
    k.client("status").try_cast("summary", s)
    await asyncio.sleep_ms(200)  # a line at 100 ms, the LED on until 140 ms
    assert len(lines) == 1, lines
    pat = r"^status: up \d+ s \| sensor 31872 avg 30210 \| stored 1 lines \| uplink off \| \d+ KB free$"
    assert re.match(pat, lines[-1]), lines
    assert hal._led is not None and hal._led.value() == 0  # blinked, and off again
    assert uplink_text((12, 0, 0, True)) == "uplink 12 sent"
    assert uplink_text((12, 3, 2, False)) == "uplink down 3 queued 2 dropped"
    await sup.stop()


# ----- the message path ------------------------------------------------------------------------
def test_sample_to_stored_line_allocates_nothing():
    need(hasattr(machine, "ADC"), ADC)
    k = Kernel()
    procs = []
    for sp in (spec("sensor"), spec("processing", every=2),
               spec("storage", path=fresh(TMP + "/lock.csv"), batch=32),
               spec("status"), spec("uplink", backlog=32)):
        p = Proc(k, sp)
        p.attach(sp.factory())
        p.server.init(sp.config, None)
        procs.append(p)

    def cycle():
        procs[0].deliver("tick", None, None, 0)
        for p in procs:
            p.serve_one()

    for _ in range(2):  # warm up: the ADC object, processing's client on storage
        cycle()
    micropython.heap_lock()
    try:
        for _ in range(40):
            cycle()
    finally:
        micropython.heap_unlock()
    assert procs[2].server.pending == 21 and procs[4].server.count == 21
    buf = bytearray(64)
    n = put_line(buf, 0, procs[1].server.ring[0])
    assert bytes(buf[:n]).count(b",") == 5 and buf[n - 1] == 10
