# Guards over the event loop: one hardware watchdog, fed by the kernel only while every
# server's software watchdog is healthy, and a soft-IRQ timer that notices a handler
# that never returns and writes the crash record before the hardware watchdog fires.
from time import ticks_ms, ticks_add, ticks_diff
from outstack import hal, errors
from outstack.kernel import Park


class Guard:
    def __init__(self, kernel, wdt_ms, runaway_ms=0, record=None):
        hal.check_watchdog(wdt_ms)
        self.kernel = kernel
        self.wdt_ms = wdt_ms
        self.period = max(10, wdt_ms // 4)  # feed and look four times per timeout
        self.runaway_ms = runaway_ms or wdt_ms // 2
        self.record = record  # record(kind, proc, msg, ms): the black box writer
        self.park = Park()
        self.fed = 0
        self.expired = 0  # servers crashed for missing their check-in
        self.sick = None  # a server still overdue after being restarted: stop feeding
        self._seq = -1  # kernel.dispatched seen at the last tick
        self._since = ticks_ms()
        self._written = False
        self.wdt = hal.Watchdog(wdt_ms)
        self.timer = hal.timer(max(10, min(self.period, self.runaway_ms // 4)), self._tick)

    async def run(self):
        while True:
            step = self._check_channels()
            if self.sick is None:
                self.wdt.feed()
                self.fed += 1
            await self.park.wait(ticks_add(ticks_ms(), step))

    def _check_channels(self):
        # Crash overdue servers; return how long until the next look (ms).
        now = ticks_ms()
        step = self.period
        names = self.kernel.names
        for name in names:
            p = names[name]
            if not (p.alive and p.spec.watchdog_ms):
                continue
            step = min(step, max(10, p.spec.watchdog_ms // 2))
            if ticks_diff(now, p.due) < 0:
                continue
            if p.guard_restarts == p.restarts:
                self.sick = name  # crashed before, yet the same run is still overdue
                continue
            p.guard_restarts = p.restarts
            self.expired += 1
            late = ticks_diff(now, p.due) + p.spec.watchdog_ms
            p.crash(errors.WatchdogExpired("%r did not check in for %d ms (limit %d ms)"
                                           % (name, late, p.spec.watchdog_ms)))
        return step

    def _tick(self, _):
        # Soft IRQ: runs even while a handler loops forever.
        k = self.kernel
        now = ticks_ms()
        if k.current is None or k.dispatched != self._seq:
            self._seq = k.dispatched
            self._since = now
            self._written = False
            return
        ms = ticks_diff(now, self._since)
        if ms >= self.runaway_ms and not self._written and self.record:
            self._written = True
            self.record("runaway", k.current, k.current.msg, ms)

    def stop(self):
        self.timer.deinit()
