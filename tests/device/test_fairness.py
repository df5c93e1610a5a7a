# Device tests of fair priorities: higher levels go first, but a flooded level delays the
# others by a bounded number of handlers (or a bounded wait), never forever.
import asyncio
import micropython
import time
from outstack.kernel import Kernel
from outstack.server import Server
from _util import serve

ORDER = []
QUIET = [False]  # under heap_lock nothing may append to ORDER


class Flood(Server):
    # Always has mail: each handler casts the next message to itself.
    def handle_cast(self, msg, arg):
        if not QUIET[0]:
            ORDER.append(self.name)
        if arg:
            t = time.ticks_us()
            while time.ticks_diff(time.ticks_us(), t) < arg:
                pass
        self.try_cast(self.name, "again", arg)


class Probe(Server):
    def init(self, config, state):
        self.n = 0

    def handle_cast(self, msg, arg):
        if not QUIET[0]:
            ORDER.append(self.name)
        self.n += 1

    def handle_call(self, msg, arg):
        ORDER.append(self.name)
        return self.n


def flood(k, name, priority, spin_us=0):
    p = serve(k, name, Flood, priority=priority, grants=(name,))
    p.deliver("again", spin_us, None, 0)
    return p


async def until(cond, ms=5000):
    # Wait for what the kernel does (a generous deadline, not a timing bound).
    t = time.ticks_ms()
    while not cond():
        assert time.ticks_diff(time.ticks_ms(), t) < ms, "never happened"
        await asyncio.sleep_ms(1)


async def test_a_flooded_level_passes_the_turn_after_k_handlers():
    ORDER.clear()
    k = Kernel(fair_after=8, fair_ms=0)
    flood(k, "flood", 1)
    lo = serve(k, "lo", Probe, priority=0)
    for _ in range(3):
        lo.deliver("m", 0, None, 0)
    k.start()
    await until(lambda: lo.server.n == 3)
    k.task.cancel()
    runs = "".join("L" if n == "lo" else "f" for n in ORDER[:ORDER.index("lo") + 20])
    assert runs.startswith("f" * 8 + "L" + "f" * 8 + "L" + "f" * 8 + "L"), runs
    assert k.fair_turns >= 3 and k.delay_max[0] > 0


async def test_calls_to_a_lower_level_are_answered_under_a_flood():
    ORDER.clear()
    k = Kernel()  # the defaults: a turn after 8 higher handlers or a 100 ms wait
    flood(k, "flood", 1)
    serve(k, "storage", Probe, priority=0)
    k.start()
    c = k.client("storage")
    for i in range(50):
        await c.call("get")
    k.task.cancel()
    assert ORDER.count("storage") == 50


async def test_a_long_wait_earns_a_turn_even_before_k_handlers():
    ORDER.clear()
    k = Kernel(fair_after=0, fair_ms=5)  # the count rule off: only the wait counts
    flood(k, "flood", 2, spin_us=2000)
    lo = serve(k, "lo", Probe, priority=0)
    k.start()
    await until(lambda: len(ORDER) > 2)  # the flood runs
    lo.deliver("m", 0, None, 0)
    await until(lambda: lo.server.n == 1)
    k.task.cancel()
    assert k.fair_turns == 1 and k.delay_max[0] >= 5000  # served once it had waited 5 ms


async def test_higher_levels_still_go_first_and_strict_priority_is_an_option():
    ORDER.clear()
    k = Kernel(fair_after=0, fair_ms=0)
    flood(k, "flood", 1)
    lo = serve(k, "lo", Probe, priority=0)
    lo.deliver("m", 0, None, 0)
    k.start()
    await until(lambda: len(ORDER) > 300)
    k.task.cancel()
    assert lo.server.n == 0 and k.fair_turns == 0  # strict: as configured, lo waits


async def test_bad_fairness_settings_are_refused_with_what_is_wrong():
    k = Kernel()
    try:
        k.fair(after=-1)
    except ValueError as e:
        assert "fairness" in str(e)
    else:
        raise AssertionError("a negative fairness setting was taken")
    k.fair(4, 20)
    assert k.fair_after == 4 and k.fair_us == 20000


async def test_the_fair_pick_allocates_nothing():
    ORDER.clear()
    k = Kernel(fair_after=2, fair_ms=1)
    flood(k, "flood", 3)
    lo = serve(k, "lo", Probe, priority=0)
    k.start()
    await asyncio.sleep_ms(5)
    QUIET[0] = True
    micropython.heap_lock()
    try:
        for _ in range(200):
            lo.deliver("m", 0, None, 0)
            await asyncio.sleep_ms(0)
    finally:
        micropython.heap_unlock()
        QUIET[0] = False
    k.task.cancel()
    assert lo.server.n > 0 and k.fair_turns > 0


async def test_per_level_delay_is_kept_for_the_console():
    k = Kernel()
    lo = serve(k, "lo", Probe, priority=0)
    lo.deliver("m", 0, None, 0)
    k.start()
    await until(lambda: lo.server.n == 1)
    k.task.cancel()
    rows = k.levels()
    assert [r["pri"] for r in rows] == [0, 1, 2, 3]
    assert rows[0]["max_delay_us"] >= rows[0]["delay_us"] > 0 and rows[3]["max_delay_us"] == 0


async def test_fairness_comes_from_the_system_and_config_json():
    from outstack.system import System

    table = {"lo": {"factory": Probe, "priority": 0}}
    with open("/fair.json", "w") as f:
        f.write('{"fairness": {"after": 3}}')
    s = System(table, config_path="/fair.json", fairness={"after": 5, "ms": 7}).boot()
    assert s.kernel.fair_after == 3 and s.kernel.fair_us == 7000  # the file wins, key by key
    s.kernel.task.cancel()
    with open("/fair.json", "w") as f:
        f.write('{"fairness": {"after": "many"}}')
    s = System(table, config_path="/fair.json").boot()
    assert s.kernel.fair_after == 8 and "fairness" in s.errors[-1], s.errors
    s.kernel.task.cancel()
