# Status: every `every_ms` one short console line (last reading, what is stored and sent,
# free RAM) and a blink of the LED, so a glance at the board says it is alive and well.
import asyncio
import gc
from micropython import const
from time import ticks_ms, ticks_diff
from outstack import errors, hal
from outstack.server import Server

_BLINK_MS = const(40)
_T0 = ticks_ms()  # boot, near enough: this module loads as the system starts


class Status(Server):
    def init(self, config, state):
        self.every_ms = config["every_ms"]
        self.out = print  # where the line goes: the console (a test may listen instead)
        self.summaries = self.last = self.avg = self.missed = 0

    def handle_cast(self, msg, arg):
        if msg != "summary":
            return super().handle_cast(msg, arg)
        self.summaries += 1  # copied out: the summary record is reused by processing
        self.last, self.avg, self.missed = arg.last, arg.avg, arg.missed

    async def run(self):
        storage = self.client("storage")
        while True:
            await asyncio.sleep_ms(self.every_ms)
            stored = await _ask(storage)
            uplink = self._uplink()
            sent = None if uplink is None else await _ask(uplink)
            self.out(self.line(stored, sent))
            await _blink()

    def line(self, stored, uplink):
        """stored: storage's (lines, bytes, flushes); uplink: (sent, queued, dropped,
        connected); None for a server that is off or did not answer."""
        return "status: up %d s | %s | %s | %s | %d KB free" % (
            ticks_diff(ticks_ms(), _T0) // 1000, self._sensor(),
            "stored ?" if stored is None else "stored %d lines" % stored[0],
            uplink_text(uplink), _free_kb())

    def _sensor(self):
        if not self.summaries:
            return "sensor -"
        lag = " (%d missed)" % self.missed if self.missed else ""
        return "sensor %d avg %d%s" % (self.last, self.avg, lag)

    def _uplink(self):
        try:
            return self.client("uplink")
        except errors.NoSuchServer:
            return None  # not in this config


def uplink_text(stats):
    if stats is None:
        return "uplink off"
    sent, queued, dropped, connected = stats
    text = "uplink %d sent" % sent if connected else "uplink down %d queued" % queued
    return text + (" %d dropped" % dropped if dropped else "")


def _free_kb():
    gc.collect()  # what is really free, not what garbage happens to be left uncollected
    return gc.mem_free() // 1024


async def _ask(c):
    try:
        await c.call("stats")
        return c.value
    except errors.OutstackError:
        return None  # down or restarting: the line says "?" or "off"


async def _blink():
    hal.led(True)
    await asyncio.sleep_ms(_BLINK_MS)
    hal.led(False)
