# Processing: a moving window over the readings (avg, min, max). Every `every` samples it
# hands a summary to storage and publishes it on "summaries" for whoever listens.
from micropython import const
from time import ticks_ms, ticks_diff
from outstack import errors
from outstack.server import Server
from app.summary import Summary

_SLOTS = const(8)  # summaries in flight: a slot is reused 8 summaries later (16 s by default)


class Processing(Server):
    def init(self, config, state):
        self.size = max(1, config["window"])
        self.every_n = max(1, config["every"])
        self.win = [0] * self.size  # a ring: no list grows or shrinks per sample
        self.head = self.n = self.count = 0
        self.samples = self.seq = 0
        self.missed = 0  # readings lost to lag (our inbox was full)
        self.unstored = 0  # summaries storage could not take (full, restarting or off)
        self.ring = [Summary() for _ in range(_SLOTS)]
        self.ms = 0  # since start, summed per summary: raw ticks wrap (and are opaque)
        self.t = ticks_ms()

    def handle_cast(self, msg, arg):
        if msg != "sample":
            return super().handle_cast(msg, arg)
        self.add(arg)
        self.count += 1
        if self.count >= self.every_n:
            self.count = 0
            self.emit(self.summarise())

    def handle_lag(self, topic, missed):
        self.missed += missed  # not silent: every summary carries the running total

    def handle_call(self, msg, arg):
        if msg == "stats":
            return (self.samples, self.seq, self.missed, self.unstored)
        return super().handle_call(msg, arg)

    def add(self, value):
        self.win[self.head] = value
        self.head = (self.head + 1) % self.size
        self.samples += 1
        if self.n < self.size:
            self.n += 1

    def summarise(self):
        s = self.ring[self.seq % _SLOTS]
        self.seq += 1
        s.seq = self.seq
        now = ticks_ms()
        self.ms += ticks_diff(now, self.t)  # a small int for 12 days even on 32-bit boards
        self.t = now
        s.ms = self.ms
        s.n, s.missed = self.n, self.missed
        self.measure(s)
        return s

    def measure(self, s):
        w = self.win
        total, lo, hi = 0, w[0], w[0]
        for i in range(self.n):  # until the window fills, its samples are w[0:n]
            v = w[i]
            total += v
            lo = v if v < lo else lo
            hi = v if v > hi else hi
        s.avg, s.lo, s.hi = total // self.n, lo, hi
        s.last = w[(self.head - 1) % self.size]

    def emit(self, s):
        try:
            self.try_cast("storage", "summary", s)
        except (errors.InboxFull, errors.ServerDown, errors.NoSuchServer):
            self.unstored += 1  # counted, shown in stats; the summary still goes out below
        self.publish("summaries", "summary", s)
