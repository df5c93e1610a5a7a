# Cost of the message watch (outstack.debug.watch) on the message path, in one run:
# cast throughput with the hook compiled out, present but off, tracing on, recording on.
#   mpremote connect PORT run bench/trace.py          (outstack must be on the board)
#   mpremote connect PORT exec "BENCH_SHORT=1" run bench/trace.py
import asyncio
import gc
import time
from outstack.kernel import Kernel
from outstack.server import Server, Proc
from outstack.spec import Spec
from outstack.debug.watch import watch

try:
    SHORT = BENCH_SHORT  # type: ignore[name-defined]  # noqa: F821  set by a prior exec
except NameError:
    SHORT = 0
N = 500 if SHORT else 20000
ROUNDS = 1 if SHORT else 9


class Sink(Server):
    def init(self, config, state):
        self.n = state or 0

    def handle_cast(self, msg, arg):
        self.n += 1


class Saver(Sink):
    def save(self):
        return self.n  # a checkpoint every `record` messages (recording rings for replay)


def serve(p, hook):
    # Proc.serve_one reduced to the plain-cast path, with or without the watch check, so
    # the two differ by exactly the hook.
    def serve_one():
        ib = p.inbox
        if not ib.count:
            return False
        i = ib.head
        msg = ib.msg[i]
        arg = ib.arg[i]
        ib.drop()
        p._room()
        p.msg = msg
        if hook and p.watch is not None:
            p.watch.seen(p, msg, arg, None)  # the hook exactly as Proc.serve_one has it
        p.kernel.run_handler(p, p._cast, msg, arg)
        return True

    return serve_one


async def rate(hook, record=0, trace=False, cls=Sink):
    k = Kernel()
    p = Proc(k, Spec("sink", cls, inbox=16))
    p.attach(cls())
    p.server.init({}, None)
    p.serve_one = serve(p, hook)
    if record or trace:
        watch(k, "sink", record=record, trace=trace)
    k.start()
    c = k.client("sink")
    gc.collect()
    t0 = time.ticks_us()
    for i in range(N):
        await c.cast("m", i)
    while p.inbox.count:
        await asyncio.sleep_ms(0)
    dt = time.ticks_diff(time.ticks_us(), t0)
    k.task.cancel()
    return N * 1000000 // dt


async def main():
    rows = (("no hook (baseline)", False, 0, False, Sink), ("hook, watch off", True, 0, False, Sink),
            ("tracing on", True, 0, True, Sink), ("recording on (32)", True, 32, False, Sink),
            ("recording + save()", True, 32, False, Saver))
    best = {}
    costs: dict = {name: [] for name, *_ in rows}
    for r in range(ROUNDS):
        # Each round measures every row, in an order rotated round by round, and each row's
        # cost is taken against that round's baseline: drifts of the machine hit both alike.
        got = {}
        for i in range(len(rows)):
            name, hook, record, trace, cls = rows[(i + r) % len(rows)]
            got[name] = await rate(hook, record, trace, cls)
            best[name] = max(best.get(name, 0), got[name])
        base = got["no hook (baseline)"]
        for name in got:
            costs[name].append(100.0 * (base - got[name]) / base)
    print("outstack bench/trace.py: %d casts per run, %d rounds" % (N, ROUNDS))
    print("%-20s %9s  %s" % ("", "best/s", "cost vs the same round's baseline: median (min..max)"))
    for name, *_ in rows:
        c = sorted(costs[name])
        print("%-20s %9d  %5.1f%%  (%.1f..%.1f)" % (name, best[name], c[len(c) // 2], c[0], c[-1]))
    print("goals: watch off < 5%, tracing/recording on < 30%")


asyncio.run(main())
