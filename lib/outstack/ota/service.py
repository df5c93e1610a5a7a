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
from outstack.server import Server
from outstack.ota.receive import Receiver, MAX_SIZE



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
        self.applying = False  # an install is running: its modules stay loaded

    async def run(self):
        try:
            port = self.config.get("tcp_port")
            if port:
                try:
                    self.listener = await asyncio.start_server(self._tcp, "0.0.0.0", port)
                except (OSError, ImportError) as e:  # taken, or no socket here: UART1 serves
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

        try:
            port = hal.uart(self.config.get("baud", 115200))
        except OSError as e:  # a board without a UART1 driver: said once, nothing to serve
            print("outstack: %s: %s: no OTA over UART1" % (self.name, e))
            await asyncio.Event().wait()
        stream = asyncio.StreamReader(port)
        while True:
            await self.rx.serve(stream, stream)

    async def _tcp(self, reader, writer):
        await self.rx.serve(reader, writer, True, self.config.get("tcp_console", False))

    async def _console(self, line):
        # The same link carries the debug console, for a spec granted the "debug" right.
        # (the link has made room and loaded it: outstack/ota/receive.py)
        from outstack.debug.console import answer_for

        return await answer_for(self, line)

    async def install(self, path):
        """Verify the received package and install it; one line for the host either way."""
        from outstack.ota import apply

        self.applying = True
        try:
            return await apply.install(self, path)
        finally:
            self.applying = False
            _free()  # verify, rsa, package, install: loaded for this push, let go after it

    def status(self):
        from outstack.ota import apply

        try:
            return apply.status(self)
        finally:
            if not self.applying:  # an install in progress keeps what it loaded
                _free()

    def handle_call(self, msg, arg):
        if msg == "status":
            return self.status()
        return super().handle_call(msg, arg)

    def terminate(self, reason):
        if self.listener:
            self.listener.close()
            self.listener = None


def _free():
    # The push-time modules go once a push is over: a board between pushes does not pay them.
    import gc
    from outstack import unload

    unload("outstack.ota", _PUSH)
    gc.collect()


_PUSH = ("apply", "verify", "rsa", "package", "install", "deps")
