# The console on UART1 and/or a TCP port, for boards that run no OTA server there (the OTA
# server's link carries the console too). Same frames as the update link; updates are
# refused on this one. Config: {"uart": false, "baud": 115200, "tcp_port": 0,
# "console_keys": [...], "console_reads": true}: the TCP console is off without a tcp_port;
# commands that change state must be signed (debug/auth.py). Needs the "debug" right (the
# System); essential, so it answers in safe mode too.
import asyncio
from outstack.server import Server


class ConsoleServer(Server):
    def init(self, config, state):
        from outstack.ota.receive import Receiver

        self.config = config
        self.rx = Receiver(0, None, None, self._answer)  # max_size 0: no packages here
        self.listener = None

    async def _answer(self, line):
        # (the link has made room and loaded it: outstack/ota/receive.py)
        from outstack.debug.console import answer_for

        return await answer_for(self, line)

    async def run(self):
        try:
            if self.config.get("tcp_port"):
                self.listener = await asyncio.start_server(self._tcp, "0.0.0.0",
                                                           self.config["tcp_port"])
            if self.config.get("uart"):
                from outstack import hal

                stream = asyncio.StreamReader(hal.uart(self.config.get("baud", 115200)))
                while True:
                    await self.rx.serve(stream, stream)
            await asyncio.Event().wait()
        finally:  # crashed or stopped: the port is free for the next start
            lst, self.listener = self.listener, None
            if lst is not None:
                lst.close()
                await lst.wait_closed()
            await self.rx.close_all()

    async def _tcp(self, reader, writer):
        await self.rx.serve(reader, writer, True)

    def terminate(self, reason):
        if self.listener:
            self.listener.close()
            self.listener = None
