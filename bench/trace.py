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
ROUNDS = 1 if SHORT else 5


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
    for _ in range(ROUNDS):  # interleaved rounds, best of each: noise hits all alike
        for name, hook, record, trace, cls in rows:
            best[name] = max(best.get(name, 0), await rate(hook, record, trace, cls))
    base = best["no hook (baseline)"]
    print("outstack bench/trace.py: %d casts, best of %d rounds" % (N, ROUNDS))
    for name, _, _, _, _ in rows:
        cost = 100.0 * (base - best[name]) / base
        print("%-20s %7d casts/s  cost %5.1f%%" % (name, best[name], cost))
    print("goals: watch off < 5%, tracing/recording on < 30%")


asyncio.run(main())
