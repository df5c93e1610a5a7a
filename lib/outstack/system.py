# A whole system: the top supervisor built from the firmware's server table at boot (the
# boot itself, config to guard, is outstack/sysboot.py, loaded for it only), the live prompt
# and console, and the top-level escalation: a spent budget at the top is a clean reset
# through hal, with the reason in the crash record.
import asyncio
from outstack.kernel import Kernel, Park, far
from outstack.supervisor import Supervisor


class System:
    def __init__(self, table, config_path="/config.json", defaults=None, max_servers=24,
                 repl=True, fairness=None):
        self.table = table  # name -> dict(factory=..., priority=..., grants=..., ...)
        self.config_path = config_path
        self.defaults = defaults
        self.kernel = Kernel(max_servers)
        self.top: "Supervisor" = None  # type: ignore[assignment]  # set by boot()
        self.config = None
        self.errors = []  # what went wrong at boot, said once, kept for the console
        self.repl = repl  # a live prompt on the console beside the servers
        self.fairness = fairness or {}  # Kernel.fair() settings; config.json "fairness" wins
        self.guard = None
        self.guards = None  # the MPU guards armed at boot (outstack.hal.mpu.Guards), if any
        self.check = None  # the BootCheck: safe mode, crash record, quarantine
        self.last_reset = None  # why the previous boot ended, if it crashed
        self.console = None  # outstack.debug.console.Console, made on the first command
        self.installing = None  # the server installing an update (ota/apply.py): one at a time
        self.kernel.rights["ota"] = self  # installing swaps servers: only for specs granted it
        self.kernel.rights["debug"] = self  # the remote console: inspect, restart, inject

    def boot(self):
        # The boot's code is loaded for it and let go after it: a running board does not pay it.
        from outstack import sysboot, unload

        try:
            sysboot.boot(self)
        finally:
            unload("outstack", ("sysboot", "config"))
        return self

    async def _audit(self, ms):
        # A server whose state outgrows its spec's mem_limit is crashed (and so restarted by
        # its supervisor) before it can take the whole heap down with it.
        from outstack.debug.mem import size_of

        while True:
            await asyncio.sleep_ms(ms)
            for p in self.kernel.names.values():  # every server, nested trees too
                lim = p.spec.mem_limit
                if lim and p.alive and p.server is not None:
                    n = size_of(p.server)[0]
                    if n > lim:
                        p.crash(MemoryError("%r holds about %d bytes, over its mem_limit of %d"
                                            % (p.name, n, lim)))

    async def _healthy_after(self, ms):
        await asyncio.sleep_ms(ms)
        if self.check:
            self.check.healthy()

    def _runaway(self, kind, proc, msg, ms):
        from outstack import safemode

        safemode.record(kind, proc, msg, ms, kernel=self.kernel)

    async def run(self):
        self.boot()
        if self.repl:
            g = {"system": self, "kernel": self.kernel, "client": self.kernel.client,
                 "call": self.call, "console": self.command}
            asyncio.create_task(self._prompt(g))
        park = Park()
        while True:
            await park.wait(far())

    def _prompt(self, g):
        # repl="aiorepl": micropython-lib's asyncio REPL where it is installed (history,
        # paste mode; the host console then goes over UART1 or TCP only). Otherwise, and on
        # the virtual board, the framework's own prompt, which also serves the USB console.
        if self.repl == "aiorepl":
            try:
                import aiorepl  # type: ignore[import-not-found]

                return aiorepl.task(g)
            except ImportError:
                self._say("repl='aiorepl' but aiorepl is not installed: the built-in prompt runs")
        from outstack import repl

        return repl.serve(g)

    async def call(self, dest, msg, arg=None, timeout_ms=5000):
        # Convenience for people (the live prompt, scripts): allocates a Client per call.
        c = self.kernel.client(dest, "repl")
        await c.call(msg, arg, timeout_ms)
        return c.value

    async def command(self, line):
        """Run one console command (`await console('servers')` at the live prompt): its data,
        or the error it raises."""
        from outstack.debug.console import Console, Stream

        if self.console is None:
            self.console = Console(self)
        data = await self.console.run(line)
        if isinstance(data, Stream):  # a whole crash record: JSON text in pieces
            import json

            data = json.loads(b"".join(p if isinstance(p, bytes) else p.encode()
                                       for p in data.pieces))
        return data

    def run_forever(self):
        asyncio.run(self.run())

    def escalate(self, sup, reason):
        # The top supervisor gave up: record why and reset the board cleanly.
        from outstack import hal, safemode

        self._say("top supervisor gave up (%s): resetting" % reason)
        p = sup.culprit
        try:
            safemode.record("escalation", p, p.msg if p else None, exc=sup.last_error,
                            kernel=self.kernel, reason=reason)
        except Exception as e:  # a full flash must not stop the reset
            print("outstack: could not write the crash record: %r" % e)
        hal.reset()

    def _say(self, text):
        self.errors.append(text)
        print("outstack:", text)


class _Lazy:
    def __init__(self, mod, cls):
        self.mod = mod
        self.cls = cls

    def __call__(self):
        m = __import__(self.mod, None, None, (self.cls,))
        return getattr(m, self.cls)()

