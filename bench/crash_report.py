# What keeping a crash report costs (outstack.reports): the time to write one into the
# flash ring, and the longest the loop waits meanwhile (another task ticks through it),
# beside the same record written in one go, which would hold the loop for all of it.
#   mpremote connect PORT run bench/crash_report.py          (outstack must be on the board)
#   mpremote connect PORT exec "BENCH_SHORT=1" run bench/crash_report.py
import asyncio
import time
from outstack import crashlog, reports

try:
    SHORT = BENCH_SHORT  # type: ignore[name-defined]  # noqa: F821  set by a prior exec
except NameError:
    SHORT = 0
N = 3 if SHORT else 24
REC = {"server": "bench", "error": "ValueError: " + "x" * 148, "tb": "t" * 800, "msg": "'m'",
       "restarts": 0, "handled": 1, "uptime_ms": 0, "boot": 0, "off": None}


async def ticker(worst):
    last = time.ticks_us()
    while True:
        await asyncio.sleep_ms(0)
        now = time.ticks_us()
        worst[0] = max(worst[0], time.ticks_diff(now, last))
        last = now


async def main():
    had = reports.numbers()  # the board's own (those the ring keeps past the bench stay)
    worst = [0]
    t = asyncio.create_task(ticker(worst))
    await asyncio.sleep_ms(0)
    took = 0
    for _ in range(N):
        t0 = time.ticks_us()
        await reports.keep(dict(REC))
        took += time.ticks_diff(time.ticks_us(), t0)
    t.cancel()
    idle = [0]  # the same task alone for as long: the host's own noise, for comparison
    t = asyncio.create_task(ticker(idle))
    await asyncio.sleep_ms(took // 1000 + 1)
    t.cancel()
    t0 = time.ticks_us()
    crashlog.save_sealed(crashlog.DIR + "/bench.json", REC)
    whole = time.ticks_diff(time.ticks_us(), t0)
    size = reports.load()[0][0]
    print("crash report: %d written, %d us each on average, ring of %d kept; longest loop "
          "wait while writing %d us (%d us with nothing written); the same record in one go "
          "holds the loop %d us; %d bytes"
          % (N, took // N, len(reports.numbers()), worst[0], idle[0], whole, len(str(size))))
    for n in reports.numbers():
        if n not in had:
            reports._remove(n)
    crashlog._remove(crashlog.DIR + "/bench.json")


asyncio.run(main())
