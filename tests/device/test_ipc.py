# Device tests of the message path: cast, call, replies, full inboxes, rights, heap use.
import asyncio
import micropython
from outstack.kernel import Kernel
from outstack.server import Server
from _util import serve
from outstack import errors


class Counter(Server):
    def init(self, config, state):
        self.n = 0

    def handle_cast(self, msg, arg):
        if msg == "add":
            self.n += arg
        elif msg == "boom":
            raise ValueError("boom on purpose")
        else:
            super().handle_cast(msg, arg)

    def handle_call(self, msg, arg):
        if msg == "get":
            return self.n
        if msg == "later":
            self.pending = self.defer()
            return None
        if msg == "boom":
            raise ValueError("bad request %r" % (arg,))
        return super().handle_call(msg, arg)


def start(k, name="counter", cls=Counter, **kw):
    return serve(k, name, cls, **kw)


async def test_cast_then_call_sees_it():
    k = Kernel()
    start(k)
    k.start()
    c = k.client("counter")
    await c.cast("add", 2)
    c.try_cast("add", 3)
    await c.call("get")
    assert c.value == 5


async def test_call_and_cast_allocate_nothing_in_steady_state():
    k = Kernel()
    start(k)
    k.start()
    c = k.client("counter")
    for _ in range(3):  # warm up: first use may grow internal tables
        await c.cast("add", 1)
        await c.call("get")
    micropython.heap_lock()
    try:
        for _ in range(200):
            await c.cast("add", 1)
            c.try_cast("add", 1)
            await c.call("get")
    finally:
        micropython.heap_unlock()
    assert c.value == 3 + 400


async def test_call_times_out_with_clear_error():
    class Slow(Server):
        def handle_call(self, msg, arg):
            self.defer()  # never answered

    k = Kernel()
    start(k, "slow", Slow)
    k.start()
    c = k.client("slow")
    try:
        await c.call("x", None, 50)
    except errors.CallTimeout as e:
        assert "'x'" in str(e) and "'slow'" in str(e), str(e)
    else:
        raise AssertionError("no timeout")


async def test_deferred_reply():
    k = Kernel()
    p = start(k)
    k.start()
    c = k.client("counter")

    async def answer_later():
        await asyncio.sleep_ms(20)
        p.server.reply(p.server.pending, "done")

    asyncio.create_task(answer_later())
    await c.call("later")
    assert c.value == "done"


async def test_full_inbox_try_cast_hands_message_back():
    k = Kernel()
    start(k, inbox=2)  # dispatcher not started: nothing drains the inbox
    c = k.client("counter")
    c.try_cast("add", 1)
    c.try_cast("add", 2)
    try:
        c.try_cast("add", 99)
    except errors.InboxFull as e:
        assert e.msg == "add" and e.arg == 99
        assert "'counter'" in str(e)
    else:
        raise AssertionError("full inbox accepted a message")


async def test_blocking_cast_waits_for_room_then_times_out():
    k = Kernel()
    start(k, inbox=1)
    c = k.client("counter")
    c.try_cast("add", 1)
    try:
        await c.cast("add", 2, 30)
    except errors.CallTimeout as e:
        assert "full" in str(e)
    else:
        raise AssertionError("cast into a full inbox did not time out")
    k.start()  # now the inbox drains and a waiting cast gets in
    await c.cast("add", 5)
    await c.call("get")
    assert c.value == 6


async def test_send_to_unknown_name():
    k = Kernel()
    try:
        k.client("nobody")
    except errors.NoSuchServer as e:
        assert "'nobody'" in str(e)
    else:
        raise AssertionError("unknown name accepted")


async def test_server_may_send_only_where_granted():
    k = Kernel()
    p = start(k, "a", grants=("counter",))
    start(k)
    p.server.client("counter")  # granted
    try:
        p.server.try_cast("b", "x")
    except errors.NotPermitted as e:
        assert "'a'" in str(e) and "'b'" in str(e)
    else:
        raise AssertionError("ungranted send went through")


async def test_handler_that_raises_fails_the_call_at_once():
    k = Kernel()
    p = start(k)
    exits = []
    p.on_exit = lambda proc, why: exits.append(why)
    k.start()
    c = k.client("counter")
    try:
        await c.call("boom", 7)
    except errors.ServerCrashed as e:
        assert "bad request 7" in str(e) and "'counter'" in str(e), str(e)
    else:
        raise AssertionError("crash not reported to caller")
    assert len(exits) == 1 and not p.alive
    try:
        c.try_cast("add", 1)
    except errors.ServerDown:
        pass
    else:
        raise AssertionError("dead server accepted a cast")


async def test_callers_queued_on_a_dying_server_fail_at_once():
    import time

    k = Kernel()
    p = start(k)
    p.deliver("boom", None, None, 0)  # first in line: the server dies on it
    got = []

    async def call(w):
        try:
            await w.call("get")
            got.append("ok")
        except errors.ServerDown as e:
            got.append(type(e).__name__)

    tasks = [asyncio.create_task(call(k.client("counter"))) for _ in range(3)]
    await asyncio.sleep_ms(0)  # the three calls are queued behind "boom"
    assert p.inbox.count == 4
    k.start()
    for t in tasks:
        await t
    assert got == ["ServerDown"] * 3, got  # told at once: a timeout would be CallTimeout


async def test_malformed_message_is_refused_and_server_keeps_serving():
    k = Kernel()
    p = start(k)
    bad = []
    k.report_bad = lambda proc, msg, err: bad.append((proc.name, msg))
    k.start()
    c = k.client("counter")
    try:
        await c.call("no-such-request", 1)
    except errors.BadMessage as e:
        assert "'counter' does not handle call 'no-such-request'" in str(e), str(e)
    else:
        raise AssertionError("unknown call accepted")
    c.try_cast("no-such-cast", 1)
    await c.cast("add", 4)
    await c.call("get")
    assert c.value == 4 and p.alive and p.rejected == 2
    assert bad == [("counter", "no-such-cast")]


async def test_casts_that_wait_for_room_allocate_nothing_either():
    k = Kernel()
    p = start(k, inbox=4)
    k.start()
    c = k.client("counter")
    for _ in range(20):
        await c.cast("add", 1)
    micropython.heap_lock()
    try:
        for _ in range(500):
            await c.cast("add", 1)  # the inbox is often full: the sender parks and resumes
    finally:
        micropython.heap_unlock()
    await c.call("get")
    assert c.value == 520
    assert p.inbox.high == 4  # it really was full


async def test_privileged_rights_only_where_the_spec_lists_them():
    k = Kernel()
    k.rights["ota"] = "the system"
    p = start(k, "updater", rights=("ota",))
    q = start(k, "plain")
    assert p.server.right("ota") == "the system"
    try:
        q.server.right("ota")
    except errors.NotPermitted as e:
        assert "'plain' has no 'ota' right" in str(e)
    else:
        raise AssertionError("right handed to a server without it")


class Log(Server):
    def init(self, config, state):
        self.seen = []

    def handle_cast(self, msg, arg):
        self.seen.append(arg)

    def handle_call(self, msg, arg):
        self.seen.append(arg)
        return len(self.seen)


async def test_any_number_of_senders_wait_their_turn_for_a_full_inbox():
    k = Kernel()
    p = start(k, "log", Log, inbox=1)
    k.client("log").try_cast("m", -1)  # full, and nothing drains it yet
    got = []

    async def send(i):
        c = k.client("log")
        await c.cast("m", i) if i % 2 else await c.call("m", i)
        got.append(i)

    tasks = [asyncio.create_task(send(i)) for i in range(10)]  # more than the old 4 waiters
    await asyncio.sleep_ms(5)
    assert not got  # all of them wait; none was refused
    k.start()
    for t in tasks:
        await t
    assert sorted(got) == list(range(10)), got
    assert p.server.seen == list(range(-1, 10)), p.server.seen  # in the order they came


async def _cast(k, n, ms):
    await k.client("counter").cast("add", n, ms)


async def test_a_failing_send_suspends_first_so_a_retry_loop_cannot_starve_the_loop():
    k = Kernel()
    p = start(k, inbox=1)
    k.client("counter").try_cast("add", 1)
    waiting = [asyncio.create_task(_cast(k, 1, 10000)) for _ in range(4)]
    ticks = [0]

    async def other():  # any other task: it must keep running while the sender retries
        while True:
            ticks[0] += 1
            await asyncio.sleep_ms(0)

    t = asyncio.create_task(other())
    c = k.client("counter")
    failures = 0
    while ticks[0] < 20:  # a natural retry loop on a short timeout
        try:
            await c.cast("add", 1, 0)
        except errors.CallTimeout:
            failures += 1
    assert failures >= 1 and ticks[0] >= 20
    p.alive = False  # a server that is down: the failure comes after a suspension too
    n = ticks[0]
    try:
        await c.call("get")
    except errors.ServerDown:
        assert ticks[0] > n
    else:
        raise AssertionError("a call to a dead server succeeded")
    t.cancel()
    for w in waiting:
        w.cancel()


async def test_a_cancelled_or_timed_out_waiter_leaves_the_line():
    k = Kernel()
    p = start(k, inbox=1)
    k.client("counter").try_cast("add", 1)
    a = asyncio.create_task(_cast(k, 100, 5000))
    b = k.client("counter")
    try:
        await b.cast("add", 1000, 20)
    except errors.CallTimeout:
        pass
    await asyncio.sleep_ms(0)
    a.cancel()
    await asyncio.sleep_ms(0)
    assert p.wait_first is None and p.wait_last is None
    k.start()
    await b.cast("add", 2)  # the line works on after both left it
    await b.call("get")
    assert b.value == 3, b.value
