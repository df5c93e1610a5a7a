# Boot-loop detection: every crash-reset adds one to a streak, with the uptime that boot
# had. `crashes` of them within `window_ms` of uptime boot the board in safe mode: only
# essential servers (OTA and debugging among them) run, and the culprit stays quarantined
# until an update or an explicit clear. A boot that stays up for the window ends the streak.
from time import ticks_ms, ticks_diff
from outstack import crashlog, hal

BOOTED = ticks_ms()  # this boot's start, for the uptime a crash record carries
boots = 0  # this boot's number (the boot check counts them on flash), for crash reports


def uptime_ms():
    return ticks_diff(ticks_ms(), BOOTED)


def record(kind, proc, msg, ms=0, exc=None, kernel=None, reason=None):
    """Write the black box: called just before the board goes down (or is taken down)."""
    import gc

    rec = {"kind": kind, "server": proc.name if proc is not None else None,
           "msg": None if msg is None else str(msg), "ms": ms,
           "tb": crashlog.trim(exc) if exc is not None else "", "uptime_ms": uptime_ms(),
           "pending": True, "free": gc.mem_free(), "reason": reason}
    if proc is not None:
        rec["handled"] = proc.handled
        rec["restarts"] = proc.restarts
        w = proc.watch
        if w is not None and w.ring is not None:  # what it was handling when it went down
            rec["msgs"] = [(k, t, repr(m), repr(a)) for k, t, m, a in w.evidence().msgs(8)]
    if kernel is not None:
        rec["dispatched"] = kernel.dispatched
    crashlog.save(rec)


class BootCheck:
    def __init__(self, crashes=3, window_ms=600000):
        self.crashes = crashes
        self.window_ms = window_ms
        self.warnings = []
        self.safe = False
        self.record = None
        self.state = {}

    def run(self):
        rec, warn = crashlog.load()
        state, warn2 = crashlog.load_state()
        self.warnings = [w for w in (warn, warn2) if w]
        state["boots"] += 1
        global boots
        boots = state["boots"]
        rec = self._account(rec, state, *_cause())
        self.safe = state["streak"] >= self.crashes and state["streak_ms"] <= self.window_ms
        culprit = rec and rec.get("server")
        if self.safe and culprit and culprit not in state["quarantine"]:
            state["quarantine"].append(culprit)
        crashlog.save_state(state)
        self.record, self.state = rec, state
        return self

    def _account(self, rec, state, cause, hw=None):
        if rec is not None and rec.get("pending"):
            rec["pending"] = False
            rec["cause"] = cause
            if hw:  # the board's own handler saw the end too (a runaway, then the watchdog)
                rec["hw"] = hw["msg"]
        elif hw is not None and cause in ("HARD", "WDT"):  # only the board saw it (board.c)
            rec = {"kind": hw["kind"], "server": hw["server"], "msg": hw["msg"], "cause": cause,
                   "addr": hw["addr"], "pc": hw["pc"], "tb": "", "uptime_ms": 0,
                   "pending": False}
        elif cause == "WDT":
            rec = {"kind": "watchdog", "server": None, "msg": None, "cause": cause,
                   "tb": "", "uptime_ms": 0, "pending": False,
                   "note": "the loop stopped outside any handler (or no guard was running)"}
        else:
            return rec
        crashlog.save(rec)
        state["streak"] += 1
        state["streak_ms"] += rec.get("uptime_ms", 0)
        state["crashes"] += 1
        return rec

    def healthy(self):
        # Called once this boot has stayed up for the window: the streak is over.
        if self.state.get("streak"):
            self.state["streak"] = self.state["streak_ms"] = 0
            crashlog.save_state(self.state)


def _cause():
    # (reset cause, what the board's fault or watchdog handler recorded over the reset) where
    # the board keeps noinit words (hal.noinit); a soft reboot there counts no reset again.
    cause = hal.reset_cause()
    if getattr(hal.board, "NOINIT", None) is None:
        return cause, None
    from outstack.hal import noinit

    if noinit.soft_reboot():
        return "SOFT", None
    return cause, noinit.take_fault()


def clear_quarantine(name=None):
    """Let quarantined servers (or just `name`) run again from the next boot."""
    state, _ = crashlog.load_state()
    state["quarantine"] = [n for n in state["quarantine"] if name is not None and n != name]
    state["streak"] = state["streak_ms"] = 0
    crashlog.save_state(state)
    return state["quarantine"]
