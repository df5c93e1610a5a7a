# Device tests of the message watch: recording, tracing, their cost in allocations, and
# the recorded messages kept when a server crashes.
import asyncio
import micropython
from outstack.kernel import Kernel
from outstack.server import Server
from _util import serve
from outstack.debug.watch import watch


class Echo(Server):
    def handle_cast(self, msg, arg):
        if msg == "die":
            raise RuntimeError("died on purpose")

    def handle_call(self, msg, arg):
        return arg


def start(k, name):
    return serve(k, name, Echo)


async def test_recording_keeps_the_last_messages_with_timestamps():
    k = Kernel()
    p = start(k, "e")
    k.start()
    watch(k, "e", record=4)
    c = k.client("e")
    for i in range(6):
        await c.call("n", i)
    items = p.watch.ring.items()
    assert [(m, a) for _, m, a in items] == [("n", 2), ("n", 3), ("n", 4), ("n", 5)], items
    assert items[0][0] <= items[-1][0]


async def test_tracing_follows_messages_across_servers():
    k = Kernel()
    start(k, "a")
    start(k, "b")
    k.start()
    watch(k, "a", trace=True)
    watch(k, "b", trace=True)
    await k.client("a").call("x", 1)
    await k.client("b").call("y", 2)
    assert [(s, m) for _, s, m in k.trace.items()] == [("a", "x"), ("b", "y")]
    watch(k, "a", trace=False)
    await k.client("a").call("z", 3)
    assert len(k.trace.items()) == 2  # off again: nothing more traced
    assert k.names["a"].watch is None


async def test_watching_allocates_nothing_per_message():
    k = Kernel()
    start(k, "e")
    k.start()
    watch(k, "e", record=8, trace=True)
    c = k.client("e")
    for _ in range(10):
        await c.call("n", 1)
    micropython.heap_lock()
    try:
        for _ in range(200):
            await c.call("n", 1)
            await c.cast("m", 2)
    finally:
        micropython.heap_unlock()
    assert k.trace.n >= 400


async def test_crash_keeps_what_the_server_received():
    k = Kernel()
    p = start(k, "e")
    k.start()
    watch(k, "e", record=8)
    c = k.client("e")
    await c.cast("a", 1)
    await c.cast("b", 2)
    c.try_cast("die")
    await asyncio.sleep_ms(10)
    ev = p.last_ring
    assert [(k, m, a) for k, _, m, a in ev.msgs()] == [("cast", "a", 1), ("cast", "b", 2),
                                                       ("cast", "die", None)]
    assert ev.exact and ev.lost == 0 and ev.state is None  # recording began at the start
