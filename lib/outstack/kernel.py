# The event kernel (L1/L2) on MicroPython's asyncio: one dispatcher task serves every
# server's inbox, highest priority first, one handler at a time, each run to completion.
# Fair priorities: a lower level with mail gets one turn once it was passed over by
# `fair_after` higher-level handlers in a row, or its oldest ready server waited `fair_ms`;
# the next turn goes by priority again, so a flood at any level delays the others by a
# bounded amount and starves none.
# When nothing is due the dispatcher parks in asyncio's queue until its next timer (or
# ~3 days), so asyncio sleeps in poll (WFI on boards) with no periodic wake-ups of ours.
from micropython import const
from time import ticks_ms, ticks_us, ticks_diff, ticks_add
from asyncio import core  # type: ignore[attr-defined]  # internals; not in the stubs

LEVELS = const(4)  # priorities 0 (background) .. 3 (urgent)
_FAR = const(0x10000000)  # ms: the park deadline when nothing is due (~3 days)
BUDGET_US = const(20000)  # default handler budget; over it is reported, not killed
FAIR_AFTER = const(8)  # default: higher-level handlers in a row before a waiting level's turn
FAIR_MS = const(100)  # default: the wait of a ready server that earns its level a turn


def far():
    # The deadline of a wait for something that has no deadline: far enough never to wake
    # us for nothing, near enough for ticks arithmetic.
    return ticks_add(ticks_ms(), _FAR)


def park(task, until):
    core._task_queue.push(task, until)


def unpark(task):
    q = core._task_queue
    q.remove(task)
    q.push(task)


class Park:
    # A preallocated awaitable: `await p.wait(until)` suspends the awaiting task until
    # p.wake() or the deadline (ticks_ms), allocating nothing.
    def __init__(self):
        self.task = None
        self.state = 0  # 0 idle, 1 arming, 2 parked, 3 woken
        self.until = ticks_ms()
        self._stop = StopIteration()

    def __iter__(self):
        return self

    def wait(self, until):
        self.until = until
        self.state = 1
        return self

    def __next__(self):
        if self.state == 1:
            self.task = core.cur_task
            park(self.task, self.until)
            self.state = 2
            return None
        self.state = 0
        self.task = None
        self._stop.__traceback__ = None
        raise self._stop

    def throw(self, exc, *rest):
        # Cancelled while parked: asyncio has already moved the task; forget it.
        self.state = 0
        self.task = None
        raise exc

    def wake(self):
        if self.state == 2:
            unpark(self.task)
            self.state = 3


class Fifo:
    # A fixed ring of references (ready servers of one priority level).
    def __init__(self, size):
        self.items: list = [None] * size
        self.size = size
        self.head = 0
        self.count = 0

    def put(self, item):
        if self.count == self.size:
            raise RuntimeError("more servers than the kernel was sized for (max_servers)")
        self.items[(self.head + self.count) % self.size] = item
        self.count += 1

    def get(self):
        item = self.items[self.head]
        self.items[self.head] = None
        self.head = (self.head + 1) % self.size
        self.count -= 1
        return item


class Timer:
    # Casts `msg` to its server after `ms`, and every `period` ms if periodic (no drift).
    def __init__(self, kernel, proc, msg, arg, period):
        self.kernel = kernel
        self.proc = proc
        self.msg = msg
        self.arg = arg
        self.period = period
        self.due = ticks_ms()
        self.active = False
        self.missed = 0  # fired while the inbox was full

    def start(self, ms=None):
        self.due = ticks_add(ticks_ms(), self.period if ms is None else ms)
        if not self.active:
            self.active = True
            self.kernel.timers.append(self)
        self.kernel.park.wake()

    def stop(self):
        if self.active:
            self.active = False
            self.kernel.timers.remove(self)


class Kernel:
    def __init__(self, max_servers=24, fair_after=FAIR_AFTER, fair_ms=FAIR_MS):
        self.ready = [Fifo(max_servers) for _ in range(LEVELS)]
        self.passed = [0] * LEVELS  # handlers run above a level while it had mail
        self.delay_us = [0] * LEVELS  # per level: the last wait from ready to dispatch
        self.delay_max = [0] * LEVELS  # and the longest since start
        self.fair_turns = 0  # turns given to a level out of priority order
        self.fair_after = self.fair_us = 0
        self.fair(fair_after, fair_ms)
        self.aged = False  # the last turn was a fair one: the next goes by priority
        self.park = Park()
        self.timers = []
        self.names = {}  # the registry: name -> Proc
        self.topics = {}  # topic -> [Subscription]
        self.current = None  # the Proc whose handler runs now
        self.running = None  # where the board keeps the running server's number (hal.noinit)
        self.dispatched = 0
        self.over_budget = 0
        self.report = _report  # policy hook: called with (proc, msg, us) over budget
        self.report_bad = _report_bad  # called with (proc, msg, error) for a bad cast
        self.rights = {}  # right name -> the object that exercises it (filled at boot)
        self.trace = None  # the shared trace ring, once any server is traced
        self.task = None

    def start(self):
        import asyncio

        self.task = asyncio.create_task(self._loop())
        return self.task

    def client(self, dest, sender="main"):
        # A Client on server `dest`. Holding the kernel is the right to send anywhere;
        # servers get theirs through Server.client(), checked against their grants.
        from outstack.client import Client

        p = self.names.get(dest)
        if p is None:
            from outstack.errors import NoSuchServer

            raise NoSuchServer("no server is registered as %r (sender %r)" % (dest, sender))
        return Client(p, sender)

    def fair(self, after=FAIR_AFTER, ms=FAIR_MS):
        # The fairness rule (0 turns a clause off; both 0 is strict priority).
        if not isinstance(after, int) or not isinstance(ms, int) or after < 0 or ms < 0:
            raise ValueError("fairness: 'after' and 'ms' must be whole numbers >= 0, not %r, %r"
                             % (after, ms))
        self.fair_after = after
        self.fair_us = ms * 1000

    def levels(self):
        # Per priority level (for the console): servers ready now, and how long the last and
        # the longest wait from ready to dispatch were, in us.
        return [{"pri": i, "ready": self.ready[i].count, "delay_us": self.delay_us[i],
                 "max_delay_us": self.delay_max[i]} for i in range(LEVELS)]

    def make_ready(self, p):
        if not p.queued and p.alive:
            p.queued = True
            p.ready_at = ticks_us()
            self.ready[p.priority].put(p)
            self.park.wake()

    def _pick(self):
        top = LEVELS - 1
        while top >= 0 and not self.ready[top].count:
            top -= 1
        if top < 0:
            return None
        lvl = top if self.aged else self._starved(top)
        self.aged = lvl != top
        if self.aged:
            self.fair_turns += 1
        below = lvl - 1
        while below >= 0:
            if self.ready[below].count:
                self.passed[below] += 1
            below -= 1
        self.passed[lvl] = 0
        return self.ready[lvl].get()

    def _starved(self, top):
        # The lowest level under `top` that has waited its turn, else `top`.
        now = ticks_us()
        for lvl in range(top):
            f = self.ready[lvl]
            if not f.count:
                continue
            if self.fair_after and self.passed[lvl] >= self.fair_after:
                return lvl
            if self.fair_us and ticks_diff(now, f.items[f.head].ready_at) >= self.fair_us:
                return lvl
        return top

    async def _loop(self):
        while True:
            self._fire_timers()
            p = self._pick()
            if p is None:
                await self.park.wait(self._deadline())
                continue
            p.queued = False
            self._delay(p)
            if p.alive and p.serve_one():
                self.dispatched += 1
                if p.pending():
                    self.make_ready(p)
            await core.sleep_ms(0)  # let I/O tasks and woken callers run between handlers

    def _delay(self, p):
        d = ticks_diff(ticks_us(), p.ready_at)
        self.delay_us[p.priority] = d
        if d > self.delay_max[p.priority]:
            self.delay_max[p.priority] = d

    def run_handler(self, p, fn, msg, arg):
        # Runs one handler to completion, timed; returns its result. Raises what it raises.
        self.current = p
        r = self.running
        if r is not None:
            r[0] = p.num  # a fault or watchdog reset now names p at the next boot
        t0 = ticks_us()
        try:
            return fn(msg, arg)
        finally:
            us = ticks_diff(ticks_us(), t0)
            self.current = None
            if r is not None:
                r[0] = 0
            p.handled += 1
            p.busy_us += us
            if us > p.max_us:
                p.max_us = us
            if us > p.budget_us:
                p.over_budget += 1
                self.over_budget += 1
                self.report(p, msg, us)

    def _fire_timers(self):
        now = ticks_ms()
        expired = False
        for t in self.timers:
            if ticks_diff(t.due, now) <= 0:
                if not t.proc.deliver(t.msg, t.arg, None, 0):
                    t.missed += 1
                if t.period:
                    t.due = ticks_add(t.due, t.period)
                    if ticks_diff(t.due, now) <= 0:
                        t.due = ticks_add(now, t.period)  # fell behind: skip, do not burst
                else:
                    expired = True
                    t.active = False
        if expired:
            self.timers[:] = [t for t in self.timers if t.active]

    def _deadline(self):
        until = far()
        for t in self.timers:
            if ticks_diff(t.due, until) < 0:
                until = t.due
        return until


def _report_bad(p, msg, err):
    print("outstack: %r rejected cast %r: %s" % (p.name, msg, err))


def _report(p, msg, us):
    print("outstack: handler of %r ran %d us on %r (budget %d us)" % (p.name, us, msg, p.budget_us))
