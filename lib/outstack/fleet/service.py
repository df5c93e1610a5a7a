# The fleet server: joins Wi-Fi, connects to the MQTT broker with umqtt.simple (birth and
# last will retained on ROOT/ID/state), publishes a heartbeat every period_ms, and takes
# signed updates in chunks on ROOT/ID/ota through the OTA installer (docs/FLEET.md).
# Config: {"host": "127.0.0.1", "port": 1883, "ssid": "", "key": "", "root": "outstack",
#          "id": "" (default: the board's unique id in hex), "period_ms": 10000,
#          "keepalive": 60, "max_packet": 4096, "max_size": 262144, "keys": [...],
#          "modules": ["app.*"], "health_ms": 3000, "join_ms": 10000, "retry_ms": 2000,
#          "retry_max_ms": 8000, "connect_ms": 5000}. A lost broker is retried with back-off
#          (retry_ms doubling up to retry_max_ms, with jitter); connecting never blocks the board.
# Needs the "ota" right. The broker is not trusted: a package's signature decides.
import asyncio
from micropython import const
from time import ticks_ms
from outstack import hal
from outstack.server import Server

_POLL_MS = const(100)  # how often a Wi-Fi join in progress is checked
_STUCK_MS = const(5000)  # the rest of a packet that began must come within this
_BOOTED = ticks_ms()  # loaded at boot with the server table: uptime counts from here


class FleetServer(Server):
    def init(self, config, state):
        self.cfg = config
        self.keys = None  # loaded by outstack.ota.apply on the first update
        self.config = config  # apply reads "keys", "modules" and "health_ms" from here
        self.buf = bytearray(config.get("max_packet", 4096))  # every packet lands here
        self.mv = memoryview(self.buf)
        self.mq = None  # the umqtt client while connected
        self.xfer = None  # the Transfer, made by the first offer
        self.pending = False  # an update arrived whole: install it after this packet
        self.last = None  # the last update's result line
        self.beats = self.got = self.dropped = self.connects = 0
        self.reported = -1  # the newest crash report published (-1: not looked yet)
        self.said = None
        self.started = _BOOTED
        root = config.get("root", "outstack")
        self.base = "%s/%s/" % (root, config.get("id") or hal.unique_id())

    def handle_cast(self, msg, arg):
        if msg == "beat":
            return self.beat()
        return super().handle_cast(msg, arg)

    def handle_call(self, msg, arg):
        if msg == "stats":
            return {"connected": self.mq is not None, "beats": self.beats, "got": self.got,
                    "dropped": self.dropped, "connects": self.connects, "last": self.last,
                    "id": self.base}
        return super().handle_call(msg, arg)

    def topic(self, leaf):
        return (self.base + leaf).encode()

    # ----- the link -----------------------------------------------------------------------
    async def run(self):
        wlan = hal.wlan()
        if wlan is None or not self.cfg.get("ssid"):
            self.note("no Wi-Fi on this board" if wlan is None else "no Wi-Fi ssid/key set")
            return
        self.every(self.cfg.get("period_ms", 10000), "beat")
        fails = 0
        try:
            while True:
                if await self.join(wlan) and await self.session():
                    fails = 0  # it was up: the first retry comes soon
                fails += 1
                await asyncio.sleep_ms(self.backoff(fails))
        finally:  # crashed or stopped: the socket goes, the broker says we are lost
            self.drop()
            if self.xfer is not None:
                self.xfer.close()

    def backoff(self, fails):
        # retry_ms doubling per failure up to retry_max_ms, then 50-100 % of it (ticks as
        # jitter): a fleet that lost its broker does not come back all in the same instant.
        d = min(self.cfg.get("retry_ms", 2000) << min(fails - 1, 8),
                self.cfg.get("retry_max_ms", 8000))
        return d - ticks_ms() % (d // 2 + 1)

    async def join(self, wlan):
        wlan.active(True)
        if not wlan.isconnected():
            wlan.connect(self.cfg["ssid"], self.cfg.get("key", ""))
        for _ in range(self.cfg.get("join_ms", 10000) // _POLL_MS + 1):
            if wlan.isconnected():
                return True
            await asyncio.sleep_ms(_POLL_MS)
        self.note("Wi-Fi %r not joined (status %r)" % (self.cfg["ssid"], wlan.status()))
        return False

    async def session(self):
        where = "%s:%d" % (self.cfg.get("host", "127.0.0.1"), self.cfg.get("port", 1883))
        try:
            c, reader = await self.connect()
        except Exception as e:  # refused, unreachable, a broker that says no: try later
            self.note("broker %s unreachable (%r)" % (where, e))
            self.drop()
            return False
        self.note("connected to %s as %s" % (where, self.base[:-1]))
        try:
            await self.pump(c, reader)
        except Exception as e:  # a cut link, a broker gone silent, a packet umqtt refuses
            self.note("broker %s lost (%r)" % (where, e))
        finally:
            self.drop()
        return True

    async def connect(self):
        # TCP connect, CONNECT (with the will) and CONNACK through asyncio, bounded by
        # connect_ms; the board's other servers run meanwhile. umqtt writes what follows.
        from umqtt.simple import MQTTClient  # type: ignore[import-not-found,unused-ignore]
        from outstack.fleet import beat, link

        ms = self.cfg.get("connect_ms", 5000)
        cid = self.base[:-1].encode()
        c = MQTTClient(cid, "", 1, keepalive=self.cfg.get("keepalive", 60))
        c.set_callback(self.on_message)
        s = await link.dial(self.cfg.get("host", "127.0.0.1"), self.cfg.get("port", 1883),
                            link.hello(cid, c.keepalive, self.topic("state"),
                                       b'{"state":"lost"}'), ms)
        c.sock = feed = link.Feed(s, self.mv)
        reader = asyncio.StreamReader(s)
        try:
            await asyncio.wait_for_ms(self.exact(reader, 0, 1), ms)
            n: int = await asyncio.wait_for_ms(self.rest(reader), ms)
            if n != 4 or self.buf[0] != 0x20 or self.buf[3] != 0:  # CONNACK, accepted
                raise OSError("broker refused the connection (%r)" % bytes(self.buf[:n]))
        except BaseException:
            s.close()
            raise
        self.mq = c  # connected: drop() closes the socket from here on
        feed.write(link.subscribe(self.topic("ota"), 1))  # its SUBACK comes to pump
        c.publish(self.topic("state"), beat.birth().encode(), True)
        self.connects += 1
        self.beat()
        return c, reader

    def drop(self):
        c, self.mq = self.mq, None
        if c is not None and c.sock is not None:
            try:
                c.sock.close()
            except OSError:
                pass

    def send(self, leaf, payload, retain=False):
        c = self.mq
        if c is not None:
            c.publish(self.topic(leaf), payload, retain)

    def beat(self):
        if self.mq is None:
            return
        from outstack.fleet import beat

        self.beats += 1
        try:
            self.send("hb", beat.heartbeat(self, self.beats).encode(), True)
            for n, rec in beat.crash_reports(self):
                self.send("crash", rec.encode())
                self.reported = n
        except OSError:
            self.drop()  # the reader sees it and reconnects

    async def pump(self, c, reader):
        feed = c.sock  # umqtt parses from our buffer; its writes go to the socket
        keep = self.cfg.get("keepalive", 60) * 500  # a ping at half the keepalive
        pinged = False
        while self.serving(c):
            try:
                await asyncio.wait_for_ms(self.exact(reader, 0, 1), keep)
            except asyncio.TimeoutError:
                if pinged:
                    raise OSError("broker did not answer a ping")
                c.ping()
                pinged = True
                continue
            pinged = False
            n: int = await asyncio.wait_for_ms(self.rest(reader), _STUCK_MS)
            if n:
                feed.load(n)
                c.wait_msg()
            if self.pending:
                self.pending = False
                await self.install()

    def serving(self, c):
        return c is self.mq  # a beat that failed to write dropped the link: reconnect

    async def exact(self, reader, a, z):
        while a < z:
            k = await reader.readinto(self.mv[a:z])
            if not k:
                raise OSError("broker closed the connection")
            a += k

    async def rest(self, reader):
        # The remaining length (1-4 bytes), then the packet; one too big is read and dropped.
        n = 0
        sh = 0
        i = 1
        while True:
            await self.exact(reader, i, i + 1)
            b = self.buf[i]
            n |= (b & 0x7F) << sh
            i += 1
            if not b & 0x80:
                break
            sh += 7
            if i > 4:
                raise OSError("malformed packet length")
        if i + n <= len(self.buf):
            await self.exact(reader, i, i + n)
            return i + n
        self.dropped += 1
        while n:
            k = min(n, len(self.buf))
            await self.exact(reader, 0, k)
            n -= k
        return 0

    # ----- messages -----------------------------------------------------------------------
    def on_message(self, topic, msg):
        # Runs inside umqtt's parser: bytes in, never raises (a bad frame is counted, no more).
        self.got += 1
        try:
            if topic != self.topic("ota") or not msg:
                raise ValueError("not ours")
            self.frame(msg)
        except Exception as e:
            self.dropped += 1
            if not isinstance(e, ValueError):
                self.note("update frame refused (%r)" % e)

    def frame(self, msg):
        kind = msg[0]
        if kind == 0x4F:  # O: offer
            self.offer(msg[1:])
        elif kind == 0x43:  # C: chunk
            x = self.xfer
            if x is not None and x.chunk(msg[1:]):
                self.ack()
                self.pending = x.complete
        elif kind == 0x41 and self.xfer is not None:  # A: abort
            self.xfer.discard()
            self.ack()
        else:
            raise ValueError("unknown frame")

    def offer(self, payload):
        if self.xfer is None:
            from outstack.fleet.xfer import Transfer

            self.xfer = Transfer(self.cfg.get("max_size", 262144))
        why = self.xfer.offer(payload)
        if why:
            self.result(False, why, "")
            return
        self.ack()
        self.pending = self.xfer.complete  # resumed with every byte already here

    def ack(self):
        x = self.xfer
        if x is None:
            return
        self.send("ack", ('{"have":%d,"size":%d,"sha":"%s"}' % (x.have, x.size, x.sha[:16]))
                     .encode())

    async def install(self):
        from outstack.ota import apply

        x = self.xfer
        if x is None:
            return
        sha = x.sha
        try:
            path = x.finish()
        except ValueError as e:
            self.result(False, str(e), sha)
            return
        try:
            said = await apply.install(self, path)
        finally:
            from outstack.ota.service import _free

            _free()  # the installer's modules go once it is done
        self.result(said.startswith(("installed", "accepted")) or said.startswith("rolled ")
                    and not said.startswith("rolled back"), said, sha)
        self.beat()

    def result(self, ok, said, sha):
        import json

        self.last = said
        self.note("update: " + said)
        try:
            self.send("result", json.dumps({"ok": ok, "said": said, "sha": sha}).encode(),
                         True)
        except OSError:
            self.drop()

    def note(self, text):
        if text != self.said:  # a state, said once: a down link does not flood the console
            self.said = text
            print("fleet:", text)

