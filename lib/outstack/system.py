# Boot of a whole system: read the device config, check for a boot loop, build the top
# supervisor from the firmware's server table (only essential servers in safe mode, never
# quarantined ones), arm the watchdog guard, and own the top-level escalation: a spent
# budget at the top is a clean reset through hal, with the reason in the crash record.
import asyncio
import sys
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
        self.kernel.rights["ota"] = self  # installing swaps servers: only for specs granted it
        self.kernel.rights["debug"] = self  # the remote console: inspect, restart, inject

    def boot(self):
        from outstack import config as _config

        cfg, err = _config.load(self.config_path, self.defaults)
        if err:
            self._say(err)
        said: list = []
        cfg = _config.board(cfg, said)
        for text in said:
            self._say("%s: %s" % (self.config_path, text))
        self._check_boot(cfg)
        try:
            self.top = self._tree(cfg)
        except Exception as e:  # a config the firmware cannot run: say so, run the defaults
            self._say("%s: %s; running the built-in defaults" % (self.config_path, e))
            cfg = self.defaults or {}
            self.top = self._tree(cfg)
        self.config = cfg
        self._fair(cfg)
        self._arm_mpu()
        self.top.on_escalate = self.escalate
        self.top.start(self.kernel)
        self._name_servers()
        self.kernel.start()
        self._arm_guard(cfg)
        self._keep_errors()
        _forget("config")  # read once per boot: its RAM goes back
        if any(p.spec.mem_limit for p in self.kernel.names.values()):
            asyncio.create_task(self._audit(cfg.get("audit_ms", 1000)))
        return self

    def _arm_mpu(self):
        # Cortex-M boards that name their guards (board.MPU_STACK, MPU_OTA): the MPU is on
        # before any server starts; its right goes to specs granted "mpu" (the OTA commit path).
        from outstack import hal

        if getattr(hal.board, "MPU_OTA", None) is None:
            return
        from outstack.errors import NotPermitted
        from outstack.hal import mpu

        try:
            self.guards = mpu.arm()
        except NotPermitted:
            return  # armed by an earlier System of this boot, which holds the right
        except ValueError as e:  # ConfigError too: a board file the MPU cannot take
            self._say("MPU guards not armed (%s): the software policy applies" % e)
            return
        if self.guards is not None:
            self.kernel.rights["mpu"] = self.guards

    def _name_servers(self):
        # Boards that keep the running server's number over a reset (board.NOINIT): name them.
        from outstack import hal

        if getattr(hal.board, "NOINIT", None) is not None:
            from outstack.hal import noinit

            noinit.name_servers(self.kernel)

    def _fair(self, cfg):
        try:
            self.kernel.fair(**dict(self.fairness, **cfg.get("fairness", {})))
        except (TypeError, ValueError) as e:  # a bad key or value: say so, keep the defaults
            self._say("%s: fairness: %s; running the kernel's defaults" % (self.config_path, e))

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

    def _check_boot(self, cfg):
        from outstack import safemode

        try:
            self.check = safemode.BootCheck(**cfg.get("safe_mode", {})).run()
        except Exception as e:  # the black box must never stop a boot
            self._say("boot check failed (%r): booting normally" % e)
            self.check = safemode.BootCheck()
            return
        for w in self.check.warnings:
            self._say(w)
        rec = self.check.record
        if rec and rec.get("cause"):
            self.last_reset = rec.get("reason") or "%s in %r" % (rec["kind"], rec.get("server"))
        if self.check.safe:
            self._say("SAFE MODE after %d crash-resets: essential servers only; quarantined: %s"
                      % (self.check.state["streak"], ", ".join(self.check.state["quarantine"])))

    def _tree(self, cfg):
        from outstack import config as _config

        said: list = []
        specs = _config.select(_resolve(self.table), cfg, said)
        check = self.check
        st = check.state if check else {}
        safe = check.safe if check else False
        out = [s for s in specs if s.name not in st.get("quarantine", ()) and (s.essential or not safe)]
        top = Supervisor(_config.runnable(out, said), name="top", **_config.supervisor(cfg, said))
        for text in said:  # settings refused one by one: the firmware's values run instead
            self._say("%s: %s" % (self.config_path, text))
        return top

    def _keep_errors(self):
        # What was wrong with the config, for `outstack crashlog` after a reset too.
        from outstack import crashlog, safemode

        try:
            crashlog.note_config(self.errors, safemode.boots)
        except Exception as e:  # a full flash must not stop the boot
            print("outstack: could not keep the config errors: %r" % e)

    def _arm_guard(self, cfg):
        ms = cfg.get("watchdog_ms")
        if not ms:
            return
        from outstack.guard import Guard

        try:
            self.guard = Guard(self.kernel, ms, cfg.get("runaway_ms", 0), self._runaway)
        except ValueError as e:  # above the board's limit: said, never a boot that stops
            self._say("%s: %s; the watchdog stays off" % (self.config_path, e))
            return
        asyncio.create_task(self.guard.run())
        window = self.check.window_ms if self.check else 0
        if window:
            asyncio.create_task(self._healthy_after(window))

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


def _forget(name):
    # Let a module used once go: the registry and the package's face both hold it.
    import outstack

    sys.modules.pop("outstack." + name, None)
    try:
        delattr(outstack, name)
    except AttributeError:
        pass  # not on the face


def _resolve(table):
    # Factories may be named "module:Class" so only the servers that run are imported.
    out = {}
    for name, entry in table.items():
        entry = dict(entry)
        f = entry["factory"]
        if isinstance(f, str):
            mod, _, cls = f.partition(":")
            entry["factory"] = _Lazy(mod, cls)
        out[name] = entry
    return out


class _Lazy:
    def __init__(self, mod, cls):
        self.mod = mod
        self.cls = cls

    def __call__(self):
        m = __import__(self.mod, None, None, (self.cls,))
        return getattr(m, self.cls)()

