"""The fleet as the broker shows it: every board's retained state, heartbeat and last
result, the acks of transfers in progress, and the crash reports boards publish. Anything
malformed is counted and ignored."""

import collections
import itertools
import json
import os
import sys
import threading
import time

from ..errors import CliError

ROOT = "outstack"
LEAVES = ("state", "hb", "result", "ack", "crash")
REPORTS = 20  # crash reports kept per board, newest last
# A crash report's fields (lib/outstack/reports.py) and their types; others are dropped.
REPORT = {"n": int, "server": str, "error": str, "tb": str, "msg": str, "restarts": int,
          "handled": int, "uptime_ms": int, "boot": int, "off": (str, type(None))}
_ids = itertools.count()


class Board:
    def __init__(self, bid: str):
        self.id = bid
        self.state: dict = {}
        self.hb: dict = {}
        self.result: dict = {}
        self.result_n = 0  # arrival number of `result` (0: none seen)
        self.ack: dict = {}
        self.ack_n = 0
        self.lost_at = 0.0  # time.monotonic() when its state last turned "lost"
        self.ran: set = set()  # (module, version) pairs its heartbeats have ever named
        self.reports: collections.deque = collections.deque(maxlen=REPORTS)  # crash reports
        self.sent_msgs = self.sent_bytes = self.got_msgs = self.got_bytes = 0

    @property
    def online(self) -> bool:
        return self.state.get("state") == "online"

    @property
    def presence(self) -> str:
        said = self.state.get("state")
        return said if said in ("online", "lost", "offline") else "unknown"


class Fleet:
    """Connected to the broker at host:port, subscribed to every board under `root`."""

    def __init__(self, port: int, host: str = "127.0.0.1", root: str = ROOT):
        import paho.mqtt.client as mqtt

        self.host, self.port, self.root = host, port, root
        self.boards: dict[str, Board] = {}
        self.bad = 0  # messages that were not what a board sends
        self.arrivals = 0
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"outstack-host-{os.getpid()}-{next(_ids)}")
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 4)  # a broker back after an outage: found soon
        self.connected = False  # to the broker now (paho reconnects by itself)
        self.outages = 0  # times the link to the broker was lost
        self.up_at = 0.0  # time.monotonic() of the last connect

    def connect(self, timeout: float = 10.0) -> "Fleet":
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except OSError as e:
            raise CliError(f"no MQTT broker at {self.host}:{self.port} ({e}): start one with "
                           f"`outstack fleet broker`") from None
        self.client.loop_start()
        return self

    def _on_connect(self, client, userdata, flags, reason, props=None):
        client.subscribe([(f"{self.root}/+/{leaf}", 0) for leaf in LEAVES])
        with self.cond:
            self.connected = not getattr(reason, "is_failure", False)
            self.up_at = time.monotonic()
            self.cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason=None, props=None):
        with self.cond:
            self.outages += self.connected
            self.connected = False
            self.cond.notify_all()

    def _on_message(self, client, userdata, msg):
        # paho's network thread: whatever a message holds, it must live on (a raise here
        # would end the view's link for good).
        try:
            self._take(msg)
        except Exception as e:  # a message this code did not foresee: counted, said, dropped
            with self.cond:
                self.bad += 1
            print(f"outstack: fleet message on {msg.topic!r} dropped: {e!r}", file=sys.stderr)

    def _take(self, msg):
        parts = msg.topic.split("/")
        if len(parts) != 3 or parts[0] != self.root or parts[2] not in LEAVES:
            self.bad += 1
            return
        try:
            body = json.loads(msg.payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self.bad += 1
            return
        with self.cond:
            b = self.board(parts[1])
            b.got_msgs += 1
            b.got_bytes += len(msg.payload) + len(msg.topic)
            self.arrivals += 1
            if parts[2] == "crash":
                self._report(b, body)
                self.cond.notify_all()
                return
            if parts[2] == "state" and body.get("state") == "lost" and b.presence != "lost":
                b.lost_at = time.monotonic()
            setattr(b, parts[2], body)
            if parts[2] == "hb" and isinstance(body.get("versions"), dict):
                b.ran.update((m, v) for m, v in body["versions"].items() if isinstance(v, str))
            if parts[2] in ("result", "ack"):
                setattr(b, parts[2] + "_n", self.arrivals)
            self.cond.notify_all()

    def _report(self, b: Board, body: dict) -> None:
        rec = {k: v for k, v in body.items() if k in REPORT and isinstance(v, REPORT[k])
               and not (REPORT[k] is int and isinstance(v, bool))}
        if "n" not in rec or "server" not in rec:
            self.bad += 1
            return
        if any(r["n"] == rec["n"] for r in b.reports):
            return  # one we have: a board says its newest again after a reboot
        rec = {k: v[:2000] if isinstance(v, str) else v for k, v in rec.items()}
        rec["t"] = time.time()
        b.reports.append(rec)

    def board(self, bid: str) -> Board:
        if bid not in self.boards:
            self.boards[bid] = Board(bid)
        return self.boards[bid]

    def publish(self, bid: str, leaf: str, payload: bytes) -> None:
        topic = f"{self.root}/{bid}/{leaf}"
        with self.cond:
            b = self.board(bid)
            b.sent_msgs += 1
            b.sent_bytes += len(payload) + len(topic)
        self.client.publish(topic, payload)

    def wait(self, pred, timeout: float, what: str = "the fleet"):
        """Wait until pred() is truthy (checked at each message); return it, or raise."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred()
                if got:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{what} did not happen within {timeout} s")
                self.cond.wait(min(left, 0.5))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def __enter__(self):
        return self.connect()

    def __exit__(self, *exc):
        self.close()
