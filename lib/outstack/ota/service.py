# The OTA server: takes pushes on UART1 and, when configured, on a TCP port (Wi-Fi), one at
# a time (a second push is told BUSY). Config: {"uart": true, "baud": 115200,
# "tcp_port": 0, "max_size": 1048576}. Essential by nature: it runs in safe mode.
import asyncio
from outstack.server import Server
from outstack.ota.receive import Receiver, MAX_SIZE


class OtaServer(Server):
    def init(self, config, state):
        self.config = config
        self.rx = Receiver(config.get("max_size", MAX_SIZE))
        self.listener = None

    async def run(self):
        if self.config.get("tcp_port"):
            self.listener = await asyncio.start_server(self._tcp, "0.0.0.0", self.config["tcp_port"])
        if self.config.get("uart", True):
            await self._uart()
        else:
            await asyncio.Event().wait()  # TCP only: the listener does the work

    async def _uart(self):
        from outstack import hal

        stream = asyncio.StreamReader(hal.uart(self.config.get("baud", 115200)))
        while True:
            await self.rx.serve(stream, stream)

    async def _tcp(self, reader, writer):
        try:
            await self.rx.serve(reader, writer)
        finally:
            writer.close()

    def handle_call(self, msg, arg):
        if msg == "status":
            return {"busy": self.rx.busy, "received": self.rx.received, "last": self.rx.last}
        return super().handle_call(msg, arg)

    def terminate(self, reason):
        if self.listener:
            self.listener.close()
