# Uplink: while Wi-Fi is up, sends each summary as a CSV line over TCP to host:port. When
# Wi-Fi or the collector is down, lines wait in a bounded backlog; past it the oldest go,
# counted in `dropped` and said on the console once per outage: never silently.
import asyncio
from micropython import const
from time import ticks_ms, ticks_add
from outstack import hal
from outstack.kernel import Park
from outstack.server import Server
from app.summary import LINE_MAX, put_line

_POLL_MS = const(100)  # how often a Wi-Fi join in progress is checked
_IDLE_MS = const(1000)  # how often an idle link checks that Wi-Fi is still up
_STUCK_MS = const(5000)  # a connect or a send taking longer: the collector is gone


class Uplink(Server):
    def init(self, config, state):
        self.cfg = config
        n = max(1, config["backlog"])
        self.slots = [bytearray(LINE_MAX) for _ in range(n)]  # the backlog, preallocated
        self.lens = [0] * n
        self.head = self.count = 0
        self.sent = self.dropped = 0
        self.connected = False
        self.dropping = False  # said so on the console in this outage
        self.more = Park()  # wakes the sender when a line arrives
        self.said = None

    def handle_cast(self, msg, arg):
        if msg != "summary":
            return super().handle_cast(msg, arg)
        self.push(arg)
        self.more.wake()

    def handle_call(self, msg, arg):
        if msg == "stats":
            return (self.sent, self.count, self.dropped, self.connected)
        return super().handle_call(msg, arg)

    # ----- the backlog: a ring of line buffers --------------------------------------------
    def push(self, s):
        n = len(self.slots)
        if self.count == n:
            self.pop()
            self.dropped += 1
            if not self.dropping:
                self.dropping = True
                print("uplink: backlog full (%d lines): dropping the oldest" % n)
                self.log.warning("backlog full (%d lines): dropping the oldest", n)
        i = (self.head + self.count) % n
        self.lens[i] = put_line(self.slots[i], 0, s)
        self.count += 1

    def pop(self):
        i = self.head
        self.head = (i + 1) % len(self.slots)
        self.count -= 1
        return i

    # ----- the link -----------------------------------------------------------------------
    async def run(self):
        wlan = hal.wlan()
        if wlan is None or not self.cfg["ssid"]:
            self.note("%s: keeping the last %d lines" % (
                "no Wi-Fi on this board" if wlan is None else "no Wi-Fi ssid/key set",
                len(self.slots)))
            return
        while True:
            if await self.join(wlan):
                await self.session(wlan)
            await asyncio.sleep_ms(self.cfg["retry_ms"])

    async def join(self, wlan):
        wlan.active(True)
        if not wlan.isconnected():
            wlan.connect(self.cfg["ssid"], self.cfg["key"])
        for _ in range(self.cfg["join_ms"] // _POLL_MS + 1):
            if wlan.isconnected():
                return True
            await asyncio.sleep_ms(_POLL_MS)
        self.note("Wi-Fi %r not joined (status %r)" % (self.cfg["ssid"], wlan.status()))
        return False

    async def session(self, wlan):
        where = "%s:%d" % (self.cfg["host"], self.cfg["port"])
        try:
            w = await _open(self.cfg["host"], self.cfg["port"])
        except (OSError, asyncio.TimeoutError) as e:
            self.note("collector %s unreachable (%r)" % (where, e))
            return
        self.connected = True
        self.note("sending to %s" % where)
        try:
            await self.pump(wlan, w)
            self.note("Wi-Fi down")
        except (OSError, asyncio.TimeoutError) as e:
            self.note("collector %s lost (%r)" % (where, e))
        finally:
            self.connected = False
            w.close()

    async def pump(self, wlan, w):
        while wlan.isconnected():
            while self.count:
                await self.send(w)
            await self.more.wait(ticks_add(ticks_ms(), _IDLE_MS))

    async def send(self, w):
        i = self.pop()  # off the ring first: a push while we wait must not drop it twice
        try:
            w.write(memoryview(self.slots[i])[: self.lens[i]])  # a partial write is copied
            await asyncio.wait_for_ms(w.drain(), _STUCK_MS)  # a collector that stops reading
        except (OSError, asyncio.TimeoutError):
            self.dropped += 1  # in flight when the link broke
            raise
        self.sent += 1
        self.dropping = False

    def note(self, text):
        if text != self.said:  # a state, said once: a down link does not flood the console
            self.said = text
            print("uplink:", text)
            self.log.info(text)  # the console's `log uplink` keeps the history


async def _open(host, port):
    # The writer only (the collector says nothing back); bounded: a SYN may go unanswered.
    return (await asyncio.wait_for_ms(asyncio.open_connection(host, port), _STUCK_MS))[1]
