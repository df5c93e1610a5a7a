# Boot of a whole system: read the device config, build the top supervisor from the
# firmware's server table, start it and the kernel, and own the top-level escalation:
# a spent budget at the top is a clean reset through hal, with the reason kept on flash.
import asyncio
from outstack import config as _config
from outstack.kernel import Kernel, Park
from outstack.supervisor import Supervisor

REASON_FILE = "/last_reset.txt"


class System:
    def __init__(self, table, config_path=_config.PATH, defaults=None, max_servers=24,
                 repl=True):
        self.table = table  # name -> dict(factory=..., priority=..., grants=..., ...)
        self.config_path = config_path
        self.defaults = defaults
        self.kernel = Kernel(max_servers)
        self.top = None
        self.config = None
        self.errors = []  # what went wrong at boot, said once, kept for the console
        self.repl = repl  # a live prompt on the console beside the servers
        self.last_reset = previous_reset()

    def boot(self):
        cfg, err = _config.load(self.config_path, self.defaults)
        if err:
            self._say(err)
        try:
            self.top = self._tree(cfg)
        except Exception as e:  # a config the firmware cannot run: say so, run the defaults
            self._say("%s: %s; running the built-in defaults" % (self.config_path, e))
            cfg = self.defaults or {}
            self.top = self._tree(cfg)
        self.config = cfg
        self.top.on_escalate = self.escalate
        self.top.start(self.kernel)
        self.kernel.start()
        return self

    def _tree(self, cfg):
        specs = _config.select(_resolve(self.table), cfg)
        return Supervisor(specs, name="top", **cfg.get("supervisor", {}))

    async def run(self):
        self.boot()
        if self.repl:
            from outstack import repl

            g = {"system": self, "kernel": self.kernel, "client": self.kernel.client,
                 "call": self.call}
            asyncio.create_task(repl.serve(g))
        park = Park()
        while True:
            await park.wait(_far())

    async def call(self, dest, msg, arg=None, timeout_ms=5000):
        # Convenience for people (the live prompt, scripts): allocates a Client per call.
        c = self.kernel.client(dest, "repl")
        await c.call(msg, arg, timeout_ms)
        return c.value

    def run_forever(self):
        asyncio.run(self.run())

    def escalate(self, sup, reason):
        # The top supervisor gave up: record why and reset the board cleanly.
        self._say("top supervisor gave up (%s): resetting" % reason)
        record_reset(reason)
        from outstack import hal

        hal.reset()

    def _say(self, text):
        self.errors.append(text)
        print("outstack:", text)


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


def record_reset(reason):
    import os

    try:
        with open(REASON_FILE + ".new", "w") as f:
            f.write(reason)
        os.rename(REASON_FILE + ".new", REASON_FILE)  # one rename: all or nothing
    except OSError:
        pass  # a full or failed flash must not stop the reset


def previous_reset():
    import os

    try:
        with open(REASON_FILE) as f:
            reason = f.read()
        os.remove(REASON_FILE)
        return reason
    except OSError:
        return None


def _far():
    from time import ticks_ms, ticks_add

    return ticks_add(ticks_ms(), 0x10000000)
