# The OTA server: takes pushes on UART1 and, when configured, on a TCP port (Wi-Fi), one at
# a time (a second push is told BUSY), verifies each package and installs it live.
# Config: {"keys": [{"n": "<hex>"}], "uart": true, "baud": 115200, "tcp_port": 0,
#          "max_size": 1048576, "modules": ["app.*"], "console": true, "tcp_console": false,
#          "console_keys": [...], "console_reads": true, "idle_ms": 60000, "health_ms": 3000}.
# The console rides UART1 unless "console" is false, TCP only with "tcp_console"; changes
# need a signature (debug/auth.py). "idle_ms": how long a silent TCP peer is kept;
# "health_ms": how long updated servers must stay up before an update is confirmed.
# Needs the "ota" right (and "debug" for the console on its link); essential.
import asyncio
import os
from outstack.server import Server
from outstack.ota.receive import Receiver, MAX_SIZE

STATE = "/.outstack/ota/state.json"  # {"seq": last accepted, "versions": {module: version}}


class OtaServer(Server):
    def init(self, config, state):
        self.config = config
        # "install": false keeps received packages on flash untouched (link tests, staging)
        self.rx = Receiver(config.get("max_size", MAX_SIZE),
                           self.install if config.get("install", True) else None, self.status,
                           self._console if config.get("console", True) else None)
        self.rx.idle_ms = config.get("idle_ms", self.rx.idle_ms)  # a silent TCP peer goes
        self.listener = None
        self.keys = None

    async def run(self):
        try:
            port = self.config.get("tcp_port")
            if port:
                try:
                    self.listener = await asyncio.start_server(self._tcp, "0.0.0.0", port)
                except OSError as e:  # taken (two virtual boards on one host): UART1 serves
                    print("outstack: %s: TCP port %d not available (%r): UART1 only"
                          % (self.name, port, e))
            if self.config.get("uart", True):
                await self._uart()
            else:
                await asyncio.Event().wait()  # TCP only: the listener does the work
        finally:  # crashed or stopped: the port is free for the next start
            await self._close()

    async def _close(self):
        lst, self.listener = self.listener, None
        if lst is not None:
            lst.close()
            await lst.wait_closed()
        await self.rx.close_all()

    async def _uart(self):
        from outstack import hal

        stream = asyncio.StreamReader(hal.uart(self.config.get("baud", 115200)))
        while True:
            await self.rx.serve(stream, stream)

    async def _tcp(self, reader, writer):
        await self.rx.serve(reader, writer, True, self.config.get("tcp_console", False))

    async def _console(self, line):
        # The same link carries the debug console, for a spec granted the "debug" right.
        import gc

        gc.collect()  # compiling the console wants its RAM in one piece
        from outstack.debug.console import answer_for

        return await answer_for(self, line)

    async def install(self, path):
        """Verify the received package and install it; one line for the host either way."""
        from outstack.ota.verify import OtaRejected

        try:
            return await self._install(path)
        except OtaRejected as e:
            return "refused (%s): %s" % (e.code, e)
        except Exception as e:  # a full flash, a bad config: say so, change nothing
            return "refused: %s: %s" % (type(e).__name__, e)
        finally:
            try:
                os.remove(path)
            except OSError:
                pass

    async def _install(self, path):
        import outstack
        from outstack import crashlog, hal
        from outstack.ota import verify, install
        from outstack.ota.package import Package

        state = crashlog.load_sealed(STATE)[0] or {"seq": 0, "versions": {}}
        if self.keys is None:  # a rotated key list on flash wins over the firmware's config
            self.keys = verify.load_keys(state.get("keys") or self.config.get("keys"))
        policy = verify.Policy(self.keys, hal.board.NAME, state["seq"], outstack.__version__,
                               allow=tuple(self.config.get("modules", ("app.*",))),
                               versions=state["versions"])
        with open(path, "rb") as f:
            pkg = Package(f, size=os.stat(path)[6])
            m = pkg.verify(policy)
            if m["type"] == "keys":
                return self._new_keys(m, state)
            if m["type"] == "rollback":
                return await self._rollback(m, state)
            mods = list(pkg.modules())
            _admit_ram(mods)

            def staged():  # every module arrived whole: never take this update again
                state["seq"] = m["seq"]
                crashlog.save_sealed(STATE, state)

            said = await install.install(self.right("ota"), m["seq"], [(x.rel, x) for x in mods],
                                         self.config.get("health_ms", install.HEALTH_MS),
                                         staged=staged)
        if said.startswith("installed"):
            for x in mods:
                state["versions"][x.name] = x.version
            crashlog.save_sealed(STATE, state)
        return said

    async def _rollback(self, m, state):
        from outstack import crashlog
        from outstack.ota import install

        def staged():
            state["seq"] = m["seq"]
            crashlog.save_sealed(STATE, state)

        said = await install.rollback(self.right("ota"), m["seq"], m["module"], staged)
        if said.startswith("installed"):
            state["versions"].pop(m["module"], None)  # back to what it was before
            crashlog.save_sealed(STATE, state)
        return said.replace("installed update", "rolled %s back as update" % m["module"], 1)

    def _new_keys(self, m, state):
        from outstack import crashlog
        from outstack.ota import verify

        self.keys = verify.accept_keys(m)
        state["seq"] = m["seq"]
        state["keys"] = m["keys"]
        crashlog.save_sealed(STATE, state)
        return "accepted %d new trusted key(s)" % len(self.keys)

    def status(self):
        from outstack import crashlog
        from outstack.ota import slots

        state = crashlog.load_sealed(STATE)[0] or {"seq": 0, "versions": {}}
        seq, trial, prev = slots.read()
        return {"busy": self.rx.busy, "received": self.rx.received, "last": self.rx.last,
                "running": seq, "state": trial, "previous": prev, "accepted": state["seq"],
                "versions": state["versions"], "rolled_back": slots.last_note()}

    def handle_call(self, msg, arg):
        if msg == "status":
            return self.status()
        return super().handle_call(msg, arg)

    def terminate(self, reason):
        if self.listener:
            self.listener.close()
            self.listener = None


def _admit_ram(mods):
    # Loading a module needs RAM: about its size for .mpy, a few times it to compile a .py.
    import gc
    from outstack.ota.verify import OtaRejected

    gc.collect()
    free = gc.mem_free()
    for x in mods:
        need = x.size * (3 if x.path.endswith(".py") else 1)
        if need > free:
            raise OtaRejected("ram", "module %r needs about %d bytes of RAM to load; %d are free"
                              % (x.name, need, free))
