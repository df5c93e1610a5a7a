# Supervisors start their children in dependency order, stop them in reverse, and restart
# the ones that die by policy: one_for_one, one_for_all, rest_for_one, with a restart
# budget (intensity restarts per period) and exponential back-off. A spent budget stops
# the tree and escalates to the parent; the top's escalation is the system's to decide.
import asyncio
from time import ticks_ms, ticks_diff
from outstack.errors import ConfigError, NoSuchServer, ServerDown
from outstack.kernel import Park, Kernel, far
from outstack.server import Proc

NORMAL = "normal"  # the reason of an orderly stop: transient children are not restarted


class Child:
    def __init__(self, spec):
        self.spec = spec
        self.proc = None  # a Proc, or None for a nested supervisor
        self.sup = None  # the nested Supervisor
        self.task = None  # the server's run() coroutine, if it has one
        self.state = None  # handed over between stop and start


class Supervisor:
    def __init__(self, specs, strategy="one_for_one", intensity=3, period_ms=5000,
                 backoff_ms=50, backoff_max_ms=2000, name="top"):
        from outstack.spec import STRATEGIES

        if strategy not in STRATEGIES:
            raise ConfigError("%r: unknown strategy %r" % (name, strategy))
        self.name = name
        self.specs = tuple(specs)  # as the firmware wrote them; the config is laid over them
        self.base = {"strategy": strategy, "intensity": intensity, "period_ms": period_ms,
                     "backoff_ms": backoff_ms, "backoff_max_ms": backoff_max_ms}
        self.configure(self.specs, {})
        self.restarts = []  # ticks_ms of recent restarts, for the budget
        self.total_restarts = 0
        self.exits = []  # (child, reason) waiting to be handled
        self.park = Park()
        self.kernel: "Kernel" = None  # type: ignore[assignment]  # set by start()
        self.parent = None
        self.task = None
        self.stopping = False
        self.gave_up = None  # the reason, once the budget is spent
        self.on_escalate = None  # hook for the top: on_escalate(supervisor, reason)
        self.culprit = None  # the Proc whose deaths spent the budget
        self.last_error = None

    def configure(self, specs, fields):
        """Run `specs` (the firmware's, configured) with the firmware's settings overlaid by
        `fields` (checked by outstack.config); before start() only."""
        base = self.base
        self.strategy = fields.get("strategy", base["strategy"])
        self.intensity = fields.get("intensity", base["intensity"])
        self.period_ms = fields.get("period_ms", base["period_ms"])
        self.backoff_ms = fields.get("backoff_ms", base["backoff_ms"])
        self.backoff_max_ms = fields.get("backoff_max_ms", base["backoff_max_ms"])
        self.children = [Child(s) for s in order(specs)]

    # ----- lifetime --------------------------------------------------------------------
    def start(self, kernel):
        self.kernel = kernel
        self.stopping = False
        self.restarts = []
        self.gave_up = None
        for c in self.children:
            self._start(c)
        self.task = asyncio.create_task(self._watch())

    async def stop(self, reason=NORMAL):
        self.stopping = True
        for c in reversed(self.children):
            await self._stop(c, reason)
        t, self.task = self.task, None
        if t is not None and t is not asyncio.current_task():
            t.cancel()  # from our own watcher (giving up) the loop just ends instead

    async def replace(self, names, swap):
        """Stop the named children and every child that depends on them (reverse order),
        call swap() while they are down (new code goes in), start them again in order."""
        hit = self._with_dependents(names)
        for c in reversed(hit):
            await self._stop(c, "update")
        swap()
        for c in hit:
            self._start(c)
        return hit

    def _with_dependents(self, names):
        hit: list = []
        provided: set = set()
        for c in self.children:  # start order: providers come before their dependents
            if c.spec.name in names or provided.intersection(c.spec.depends):
                hit.append(c)
                provided.update(c.spec.provides)
        return hit

    async def restart(self, name):
        """Stop and start server `name` (by hand, from the console), wherever it is in
        the tree; returns False if no supervisor below this one runs it."""
        for c in self.children:
            if c.spec.name == name and c.sup is None:
                await self._stop(c, "restart by hand")
                if c.proc is not None:
                    c.proc.restarts += 1
                self._start(c)
                return True
            if c.sup is not None and await c.sup.restart(name):
                return True
        return False

    def find(self, name):
        for c in self.children:
            if c.spec.name == name:
                return c
            if c.sup and c.sup.find(name):
                return c.sup.find(name)
        return None

    # ----- one child -------------------------------------------------------------------
    def _start(self, c):
        spec = c.spec
        if isinstance(spec.factory, Supervisor):
            c.sup = spec.factory
            c.sup.parent = (self, c)
            c.sup.start(self.kernel)
            return
        if c.proc is None:
            c.proc = self.kernel.names.get(spec.name) or Proc(self.kernel, spec)
            c.proc.on_exit = lambda proc, why, c=c: self._exited(c, why)
            if spec.record:
                from outstack.debug.watch import Watch

                c.proc.watch = Watch(spec.record)  # recording from the first message
        c.proc.off = None  # started again (by hand, after a config fix)
        server = spec.factory()
        state = c.state if spec.handover else None
        c.proc.attach(server, state)
        try:
            server.init(spec.config, state)
        except Exception as e:
            c.proc.crash(e)
            return
        c.state = None
        if hasattr(server, "run"):
            c.task = asyncio.create_task(self._guard(c, server.run()))

    async def _guard(self, c, coro):
        # A server's background coroutine dying is the server dying.
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:
            c.task = None
            if c.proc.alive:
                c.proc.crash(e)

    async def _stop(self, c, reason):
        if c.sup:
            await c.sup.stop(reason)
            return
        p = c.proc
        if p is None or not p.alive:
            return
        end = ticks_ms() + c.spec.shutdown_ms
        while p.inbox.count and ticks_diff(end, ticks_ms()) > 0:
            await asyncio.sleep_ms(1)  # let it finish what it has: an orderly stop
        await self._cancel_task(c, end)
        server = p.server
        try:
            server.terminate(reason)
            if c.spec.handover:
                c.state = server.save()
        except Exception as e:
            print("outstack: %r failed to stop cleanly: %r" % (c.spec.name, e))
        p.release(ServerDown, "%r was stopped (%s)" % (c.spec.name, reason))

    async def _cancel_task(self, c, end):
        t, c.task = c.task, None
        if t is None or t.done():
            return
        t.cancel()
        while not t.done() and ticks_diff(end, ticks_ms()) > 0:
            await asyncio.sleep_ms(1)
        if not t.done():
            print("outstack: %r ignored cancellation past its shutdown time" % c.spec.name)

    # ----- deaths and restarts -----------------------------------------------------------
    def _exited(self, c, reason):
        # Called from the dispatcher: note it and let our own task do the slow part.
        if self.stopping:
            return
        if c.task is not None:
            c.task.cancel()  # its background coroutine goes with it
            c.task = None
        self.exits.append((c, reason))
        self.park.wake()

    def child_supervisor_gave_up(self, c, reason):
        self._exited(c, reason)

    async def _watch(self):
        while not self.stopping:
            while not self.exits:
                await self.park.wait(far())
            c, reason = self.exits.pop(0)
            await self._handle_exit(c, reason)

    async def _handle_exit(self, c, reason):
        p = c.proc
        if p is not None and p.last_error is reason and isinstance(reason, Exception):
            try:
                if await self._crashed(p, reason):
                    return
            except Exception:  # out of RAM even for the report: the restart matters more
                pass
        restart = c.spec.restart
        if restart == "temporary" or (restart == "transient" and reason == NORMAL) or \
                self._again(c):
            return
        now = ticks_ms()
        self.restarts = [t for t in self.restarts if ticks_diff(now, t) < self.period_ms]
        if len(self.restarts) >= self.intensity:
            await self._give_up(c, reason)
            return
        self.restarts.append(now)
        self.total_restarts += 1
        await asyncio.sleep_ms(self._backoff())
        if self.stopping or self._again(c):
            return
        affected = self._affected(c)
        for other in reversed(affected):
            if other is not c:
                await self._stop(other, "restart of %r" % c.spec.name)
        for other in affected:
            if other.proc:
                if other.proc.off is not None and other is not c:
                    continue  # stopped for a config error: it stays stopped
                other.proc.restarts += 1
            self._start(other)

    async def _crashed(self, p, exc):
        # Every crash is logged at ERROR with its traceback and kept in the flash ring of crash
        # reports. One caused by sending to a server that does not run (NoSuchServer) is a
        # config error, not a fault: restarting cannot mend it, so the server is stopped for
        # good, with the reason shown, costs no restart budget, and the others go on.
        from outstack import reports

        if isinstance(exc, NoSuchServer):
            p.off = "stopped: it sends to a server that does not run (%s)" % exc
        await reports.crashed(p, exc)
        if p.last_ring is not None:
            from outstack.debug import record

            await record.save(p, exc)  # a recorded server: its crash can be replayed
        return p.off is not None

    def _again(self, c):
        # Running again already: an update (replace) or a restart by hand started it while
        # its death waited here (a crash report being written, the back-off). Its death is
        # dealt with: starting it once more would count a crash the new code never had.
        return c.proc is not None and c.proc.alive

    def _backoff(self):
        n = len(self.restarts)
        if n <= 1:
            return 0  # the first restart in a window is immediate
        return min(self.backoff_max_ms, self.backoff_ms << (n - 2))

    def _affected(self, c):
        if self.strategy == "one_for_one":
            return [c]
        if self.strategy == "one_for_all":
            return self.children
        return self.children[self.children.index(c):]

    async def _give_up(self, c, reason):
        self.culprit = c.proc if c.proc is not None else c.sup.culprit if c.sup else None
        self.last_error = reason
        self.gave_up = "%r restarted %d times in %d ms; last: %r" % (
            c.spec.name, self.intensity, self.period_ms, reason)
        print("outstack: supervisor %r gives up: %s" % (self.name, self.gave_up))
        await self.stop("budget spent")
        if self.parent:
            parent, me = self.parent
            parent.child_supervisor_gave_up(me, self.gave_up)
        elif self.on_escalate:
            self.on_escalate(self, self.gave_up)


def order(specs):
    # Dependency order: whoever provides a name starts before whoever depends on it.
    provider = {}
    for s in specs:
        for name in s.provides:
            provider[name] = s
    done, out = set(), []

    def visit(s, path):
        if s.name in done:
            return
        if s.name in path:
            raise ConfigError("dependency cycle: %s" % " -> ".join(path + (s.name,)))
        for dep in s.depends:
            if dep not in provider:
                raise ConfigError("%r depends on %r, which no server provides" % (s.name, dep))
            visit(provider[dep], path + (s.name,))
        done.add(s.name)
        out.append(s)

    for s in specs:
        visit(s, ())
    return out
