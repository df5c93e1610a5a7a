# Device tests of supervision: strategies, restart types, budget, escalation, order, handover.
import asyncio
from outstack.kernel import Kernel
from outstack.server import Server
from outstack.spec import Spec
from outstack.supervisor import Supervisor
from outstack import errors

LOG = []


class Worker(Server):
    def init(self, config, state):
        self.gen = (state or 0) + 1
        LOG.append("start " + self.name)

    def handle_cast(self, msg, arg):
        if msg == "crash":
            raise RuntimeError("crash on purpose")

    def handle_call(self, msg, arg):
        if msg == "gen":
            return self.gen
        if msg == "crash":
            raise RuntimeError("crash mid-call")
        return self.name

    def terminate(self, reason):
        LOG.append("stop " + self.name)

    def save(self):
        return self.gen


def tree(strategy="one_for_one", names=("a", "b", "c"), **kw):
    LOG.clear()
    k = Kernel()
    sup = Supervisor([Spec(n, Worker, handover=True) for n in names], strategy, **kw)
    sup.start(k)
    k.start()
    return k, sup


async def settle(until, ms=10000):
    # Wait for what the supervisor does, not for a fixed time: a busy machine is slower.
    for _ in range(ms // 5):
        if until():
            return
        await asyncio.sleep_ms(5)
    raise AssertionError("the supervisor did not get there in %d ms" % ms)


async def gen(k, name):
    c = k.client(name)
    await c.call("gen")
    return c.value


async def test_one_for_one_restarts_only_the_crashed_child():
    k, sup = tree()
    k.client("b").try_cast("crash")
    await settle(lambda: len(LOG) >= 4 and k.names["b"].alive)
    await asyncio.sleep_ms(20)  # and nothing more happens
    assert LOG == ["start a", "start b", "start c", "start b"], LOG
    assert await gen(k, "b") == 1  # crashed: no state handed over
    assert k.names["b"].restarts == 1


async def test_one_for_all_restarts_everyone_in_order():
    k, sup = tree("one_for_all")
    k.client("b").try_cast("crash")
    await settle(lambda: len(LOG) >= 8 and k.names["c"].alive)
    assert LOG[3:] == ["stop c", "stop a", "start a", "start b", "start c"], LOG
    assert await gen(k, "a") == 2  # stopped cleanly: state handed over


async def test_rest_for_one_restarts_the_rest():
    k, sup = tree("rest_for_one")
    k.client("b").try_cast("crash")
    await settle(lambda: len(LOG) >= 6 and k.names["c"].alive)
    await asyncio.sleep_ms(20)
    assert LOG[3:] == ["stop c", "start b", "start c"], LOG


async def test_temporary_and_transient_children():
    LOG.clear()
    k = Kernel()
    sup = Supervisor([Spec("t", Worker, restart="temporary"), Spec("r", Worker, restart="transient")])
    sup.start(k)
    k.start()
    k.client("t").try_cast("crash")
    k.client("r").try_cast("crash")
    await settle(lambda: "start r" in LOG[2:] and not k.names["t"].alive)
    assert "start t" not in LOG[2:] and "start r" in LOG[2:], LOG
    try:
        k.client("t").try_cast("x")
    except errors.ServerDown:
        pass
    else:
        raise AssertionError("temporary child came back")


async def test_budget_spent_escalates_with_reason():
    escalated = []
    k, sup = tree(intensity=3, period_ms=5000, backoff_ms=5)
    sup.on_escalate = lambda s, why: escalated.append(why)
    for _ in range(4):
        before = k.names["a"].restarts
        try:
            k.client("a").try_cast("crash")
        except errors.ServerDown:
            pass
        await settle(lambda: escalated or (k.names["a"].alive and k.names["a"].restarts > before))
    assert len(escalated) == 1, escalated
    assert "'a' restarted 3 times" in escalated[0]
    assert not k.names["b"].alive  # the whole tree stopped


async def test_backoff_grows_between_restarts():
    import time

    k, sup = tree(backoff_ms=40, intensity=10)
    seen = []
    for _ in range(3):
        t0 = time.ticks_ms()
        k.client("a").try_cast("crash")
        while not (k.names["a"].alive and k.names["a"].restarts > len(seen)):
            await asyncio.sleep_ms(1)
        seen.append(time.ticks_diff(time.ticks_ms(), t0))
    assert seen[1] >= 35 and seen[2] >= 75 and seen[2] > seen[1], seen  # never early


async def test_nested_supervisor_escalates_to_parent():
    LOG.clear()
    k = Kernel()
    inner = Supervisor([Spec("x", Worker)], intensity=1, name="inner")
    top = Supervisor([Spec("inner", inner), Spec("y", Worker)], name="top")
    top.start(k)
    k.start()
    k.client("x").try_cast("crash")
    await settle(lambda: k.names["x"].alive and k.names["x"].restarts == 1)
    k.client("x").try_cast("crash")  # second crash spends inner's budget of 1
    await settle(lambda: top.total_restarts == 1 and k.names["x"].alive)
    assert top.total_restarts == 1 and inner.gave_up is None  # restarted fresh by top
    assert await gen(k, "x") == 1  # inner restarted by top, x serves again


async def test_call_to_server_that_dies_mid_call():
    k, sup = tree()
    c = k.client("b")
    try:
        await c.call("crash")
    except errors.ServerCrashed as e:
        assert "crash mid-call" in str(e)
    else:
        raise AssertionError("no error")
    await settle(lambda: k.names["b"].alive and k.names["b"].restarts == 1)
    assert await gen(k, "b") == 1


async def test_dependency_order_and_reverse_stop():
    from outstack.supervisor import order

    LOG.clear()
    specs = [Spec("up", Worker, depends=("store",)), Spec("store", Worker, provides=("store",)),
             Spec("sense", Worker)]
    assert [s.name for s in order(specs)] == ["store", "up", "sense"]
    k = Kernel()
    sup = Supervisor(specs)
    sup.start(k)
    k.start()
    await sup.stop()
    assert LOG == ["start store", "start up", "start sense", "stop sense", "stop up", "stop store"], LOG


async def test_bad_dependencies_fail_at_boot():
    from outstack.supervisor import order

    for specs, needle in (([Spec("a", Worker, depends=("b",)), Spec("b", Worker, depends=("a",))], "cycle"),
                          ([Spec("a", Worker, depends=("nope",))], "'nope'")):
        try:
            order(specs)
        except errors.ConfigError as e:
            assert needle in str(e), str(e)
        else:
            raise AssertionError("bad dependency accepted")


async def test_dead_server_releases_subscriptions_and_timers():
    class Sub(Server):
        def init(self, config, state):
            self.t = self.every(1000, "tick")

        def handle_cast(self, msg, arg):
            raise RuntimeError("die")

    k = Kernel()
    sup = Supervisor([Spec("s", Sub, subscribes=("news",), restart="temporary")])
    sup.start(k)
    k.start()
    assert len(k.topics["news"]) == 1 and len(k.timers) == 1
    k.client("s").try_cast("x")
    await settle(lambda: not k.names["s"].alive)
    assert k.topics["news"] == [] and k.timers == []


async def test_a_server_started_again_while_its_restart_waits_is_not_started_twice():
    # b crashes twice: the second restart waits out a back-off. An update (replace) starts b
    # on new code meanwhile. When the back-off ends, b runs already: no second start, and no
    # restart counted against the new code (an OTA health check would read it as a crash).
    k, sup = tree(backoff_ms=300)
    b = k.names["b"]
    k.client("b").try_cast("crash")
    await settle(lambda: b.alive and b.restarts == 1)  # the first restart comes at once
    k.client("b").try_cast("crash")
    await settle(lambda: not b.alive and sup.total_restarts == 2)  # its restart 300 ms away
    LOG.clear()
    await sup.replace(["b"], lambda: None)
    assert LOG == ["start b"] and b.alive, LOG
    await asyncio.sleep_ms(600)  # the back-off ends first (one loop orders the two sleeps)
    assert LOG == ["start b"], LOG
    assert b.restarts == 1, b.restarts
