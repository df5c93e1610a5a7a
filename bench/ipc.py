# IPC figures of the event kernel beside bare asyncio, in one run, on any board:
#   mpremote connect PORT run bench/ipc.py        (outstack must be on the board's /lib)
# Short mode (CI): mpremote connect PORT exec "BENCH_SHORT=1" run bench/ipc.py
# On the host it runs itself on fresh boards, side by side (bench/_engines.py):
#   .venv/bin/python bench/ipc.py --board mps2-an385 [--short]
import sys

if sys.implementation.name != "micropython":  # the host: run this file on the boards
    from _engines import host_main

    host_main(__file__)
    raise SystemExit
import asyncio
import gc
import time
from outstack.kernel import Kernel
from outstack.server import Server, Proc
from outstack.spec import Spec
from outstack.supervisor import Supervisor

try:
    SHORT = BENCH_SHORT  # type: ignore[name-defined]  # noqa: F821  set by a prior exec
except NameError:
    SHORT = 0
N = 300 if SHORT else 5000  # messages per measurement
SAMPLES = 40 if SHORT else 400  # high-priority dispatches measured
SPIN_US = 2000  # each low-priority handler works this long


class Echo(Server):
    def handle_call(self, msg, arg):
        return arg

    def handle_cast(self, msg, arg):
        if msg == "crash":
            raise RuntimeError("crash for the restart figure")


def server(k, name, cls, **kw):
    p = Proc(k, Spec(name, cls, **kw))
    p.attach(cls())
    return p


def mem_used():
    return gc.mem_alloc()


# ----- call round trip ------------------------------------------------------------------
async def kernel_call(n):
    k = Kernel()
    server(k, "echo", Echo)
    k.start()
    c = k.client("echo")
    for _ in range(20):
        await c.call("ping", 1)
    gc.collect()
    m0, t0 = mem_used(), time.ticks_us()
    for i in range(n):
        await c.call("ping", i)
    dt, dm = time.ticks_diff(time.ticks_us(), t0), mem_used() - m0
    k.task.cancel()
    return dt / n, dm / n


async def bare_call(n):
    req, rep = asyncio.Event(), asyncio.Event()
    box = [None]

    async def echo():
        while True:
            await req.wait()
            req.clear()
            rep.set()

    t = asyncio.create_task(echo())
    await asyncio.sleep_ms(0)
    gc.collect()
    m0, t0 = mem_used(), time.ticks_us()
    for i in range(n):
        box[0] = i
        req.set()
        await rep.wait()
        rep.clear()
    dt, dm = time.ticks_diff(time.ticks_us(), t0), mem_used() - m0
    t.cancel()
    return dt / n, dm / n


# ----- cast throughput --------------------------------------------------------------------
class Sink(Server):
    def init(self, config, state):
        self.n = 0

    def handle_cast(self, msg, arg):
        self.n += 1


async def kernel_cast(n):
    k = Kernel()
    p = server(k, "sink", Sink, inbox=16)
    p.server.init({}, None)
    k.start()
    c = k.client("sink")
    gc.collect()
    m0, t0 = mem_used(), time.ticks_us()
    for i in range(n):
        await c.cast("m", i)
    while p.server.n < n:
        await asyncio.sleep_ms(0)
    dt, dm = time.ticks_diff(time.ticks_us(), t0), mem_used() - m0
    k.task.cancel()
    return n * 1000000 // dt, dm / n


async def bare_cast(n):
    ready, room = asyncio.Event(), asyncio.Event()
    box = [None]
    got = [0]

    async def sink():
        while True:
            await ready.wait()
            ready.clear()
            got[0] += 1
            room.set()

    t = asyncio.create_task(sink())
    await asyncio.sleep_ms(0)
    gc.collect()
    m0, t0 = mem_used(), time.ticks_us()
    for i in range(n):
        box[0] = i
        ready.set()
        await room.wait()
        room.clear()
    dt, dm = time.ticks_diff(time.ticks_us(), t0), mem_used() - m0
    t.cancel()
    return n * 1000000 // dt, dm / n


# ----- restart latency ----------------------------------------------------------------------
async def restart_latency(rounds):
    k = Kernel()
    sup = Supervisor([Spec("echo", Echo)], intensity=rounds + 1, period_ms=1000)
    sup.start(k)
    k.start()
    c = k.client("echo")
    worst = total = 0
    for _ in range(rounds):
        p = k.names["echo"]
        t0 = time.ticks_us()
        c.try_cast("crash")
        while True:
            try:
                await c.call("ping", 0, 100)
                break
            except Exception:
                await asyncio.sleep_ms(0)
        dt = time.ticks_diff(time.ticks_us(), t0)
        total += dt
        worst = max(worst, dt)
        sup.restarts = []  # measure the immediate first restart each round, not back-off
        del p
    await sup.stop()
    k.task.cancel()
    return total // rounds, worst


# ----- high-priority dispatch under load --------------------------------------------------------
# An "interrupt" lands at a random moment inside a low-priority handler (every third one):
# the urgent server must run as soon as that handler ends, not after the other busy ones.
FIRE = [0, 0, None]  # countdown, offset in the spin (us), what to call with the timestamp


def spin():
    t = time.ticks_us()
    fire = FIRE[1] if FIRE[0] == 0 else -1
    FIRE[0] = (FIRE[0] + 1) % 3
    while True:
        dt = time.ticks_diff(time.ticks_us(), t)
        if dt >= fire >= 0:
            FIRE[2](time.ticks_us())
            FIRE[1] = (FIRE[1] * 7 + 331) % SPIN_US
            fire = -1
        if dt >= SPIN_US:
            return


class Busy(Server):
    def handle_cast(self, msg, arg):
        spin()
        self.try_cast(self.name, "spin")  # stay busy forever


class Urgent(Server):
    def init(self, config, state):
        self.delays = []

    def handle_cast(self, msg, arg):
        self.delays.append(time.ticks_diff(time.ticks_us(), arg))


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, len(values) * p // 100)]


async def kernel_priority(samples):
    from outstack.irq import IrqRing

    k = Kernel()
    for i in range(5):
        name = "busy%d" % i
        server(k, name, Busy, priority=0, grants=(name,)).deliver("spin", 0, None, 0)
    u = server(k, "urgent", Urgent, priority=3, inbox=4)
    u.server.init({}, None)
    FIRE[2] = IrqRing(u, 8, "now").post
    k.start()
    while len(u.server.delays) < samples:
        await asyncio.sleep_ms(10)
    k.task.cancel()
    return u.server.delays


async def bare_priority(samples):
    delays = []
    ev = asyncio.Event()
    stamp = [0]

    def fire(t):
        stamp[0] = t
        ev.set()

    async def busy():
        while True:
            spin()
            await asyncio.sleep_ms(0)

    async def urgent():
        while True:
            await ev.wait()
            ev.clear()
            delays.append(time.ticks_diff(time.ticks_us(), stamp[0]))

    FIRE[2] = fire
    tasks = [asyncio.create_task(busy()) for _ in range(5)] + [asyncio.create_task(urgent())]
    while len(delays) < samples:
        await asyncio.sleep_ms(10)
    for t in tasks:
        t.cancel()
    return delays


# ----- starvation: a lower level under a flood ------------------------------------------------
FLOOD_US = 500  # each flooding handler works this long, and always has its next message


class Flood(Server):
    def handle_cast(self, msg, arg):
        t = time.ticks_us()
        while time.ticks_diff(time.ticks_us(), t) < FLOOD_US:
            pass
        self.try_cast(self.name, "again")


async def starvation(calls, timeout_ms=2000):
    # The worst round trip of calls to a priority-0 server while a priority-1 one is flooded.
    from outstack.errors import CallTimeout

    k = Kernel()
    server(k, "flood", Flood, priority=1, grants=("flood",)).deliver("again", 0, None, 0)
    server(k, "storage", Echo, priority=0)
    k.start()
    c = k.client("storage")
    worst = lost = 0
    for i in range(calls):
        t0 = time.ticks_us()
        try:
            await c.call("ping", i, timeout_ms)
        except CallTimeout:
            lost += 1
        worst = max(worst, time.ticks_diff(time.ticks_us(), t0))
    k.task.cancel()
    return worst, lost


async def main():
    print("outstack bench/ipc.py: %d messages per figure%s" % (N, " (short mode)" if SHORT else ""))
    kc, km = await kernel_call(N)
    bc, bm = await bare_call(N)
    print("call round trip   : outstack %6.1f us  bare Event ping-pong %6.1f us  ratio %.2fx (goal <= 1.2x)"
          % (kc, bc, kc / bc))
    print("bytes per call    : outstack %6.1f     bare Event ping-pong %6.1f" % (km, bm))
    ks, ksm = await kernel_cast(N)
    bs, bsm = await bare_cast(N)
    print("cast throughput   : outstack %6d/s   bare Event hand-off  %6d/s  ratio %.2fx"
          % (ks, bs, ks / bs))
    print("bytes per cast    : outstack %6.1f     bare Event hand-off  %6.1f" % (ksm, bsm))
    avg, worst = await restart_latency(5 if SHORT else 50)
    print("restart latency   : crash to serving again avg %d us, worst %d us" % (avg, worst))
    kd = await kernel_priority(SAMPLES)
    bd = await bare_priority(SAMPLES)
    print("urgent dispatch   : outstack p50 %5d us p99 %5d us | plain asyncio p50 %5d us p99 %5d us"
          % (pct(kd, 50), pct(kd, 99), pct(bd, 50), pct(bd, 99)))
    print("  an interrupt lands inside one of 5 busy low-priority handlers of %d us each "
          "(goal p99 <= %d us)" % (SPIN_US, SPIN_US + 1000))
    calls = 5 if SHORT else 50
    worst, lost = await starvation(calls)
    print("starvation        : priority-0 call while priority 1 is flooded (%d us handlers): "
          "worst %d us, %d of %d unanswered in 2 s" % (FLOOD_US, worst, lost, calls))


asyncio.run(main())
