# Crash reports, kept by default: every server crash is said on the board output and in
# the server's log at ERROR, with its traceback, and kept on flash in a ring of the last
# KEEP reports (server, error, trimmed traceback, restarts, uptime, boot number) that
# survives resets. Imported on the first crash only; each report is written in small
# pieces through crashlog's one sealed writer, yielding between them; the ring is bounded
# (KEEP files of at most about 1.5 KB) and a full flash costs the report, nothing else.
import json
import os
from micropython import const
from outstack import crashlog

PREFIX = crashlog.DIR + "/report-"
KEEP = const(8)  # reports kept: the oldest goes when a new one comes
_TB_LINES = const(12)
_TB_CHARS = const(800)
_TEXT = const(160)  # the error's text and the message, each cut to this
_PIECE = const(128)  # bytes written between yields to the loop
_next = 0  # the next report's number, once the ring was looked at


def report(proc, exc):
    """The report of `proc`'s crash with `exc`, as a small dict."""
    from outstack import safemode

    tb = crashlog.trim(exc, _TB_LINES)
    return {"server": proc.name, "error": ("%s: %s" % (type(exc).__name__, exc))[:_TEXT],
            "tb": tb[-_TB_CHARS:], "msg": repr(proc.msg)[:_TEXT], "restarts": proc.restarts,
            "handled": proc.handled, "uptime_ms": safemode.uptime_ms(),
            "boot": safemode.boots, "off": proc.off}


async def crashed(proc, exc):
    """Say `proc`'s crash and keep its report; never raises (a crash must go on to its
    restart whatever happens here)."""
    try:
        rec = report(proc, exc)
        say(rec)
        await keep(rec)
    except Exception as e:  # out of RAM or flash: the restart matters more than the report
        try:
            print("outstack: could not keep the crash report of %r: %r" % (proc.name, e))
        except Exception:
            pass  # not even room to say so


def say(rec):
    from outstack import log

    what = "stopped, not restarted" if rec["off"] else "crashed"
    print("outstack: %r %s (restarts so far %d): %s\n%s"
          % (rec["server"], what, rec["restarts"], rec["error"], rec["tb"]))
    if rec["off"]:
        print("outstack: %r %s; fix the config and `console restart %s`"
              % (rec["server"], rec["off"], rec["server"]))
    log.get(rec["server"]).error("%s: %s\n%s", what, rec["error"], rec["tb"])


async def keep(rec):
    """Write `rec` as the newest report of the ring; on a full flash the oldest report
    makes room, once. Returns whether it was kept."""
    from asyncio import sleep_ms

    global _next
    have = numbers()
    await sleep_ms(0)  # each flash step (list, write, rename, remove) is one step of the loop
    if not _next:
        _next = (have[-1] if have else 0) + 1
    n = rec["n"] = _next
    _next += 1
    text = json.dumps(rec)
    for attempt in (0, 1):
        try:
            await crashlog.write_sealed(_path(n), lambda: _pieces(text))
            break
        except OSError as e:
            if attempt or not have:
                print("outstack: no room on flash for the crash report of %r: %r" % (rec["server"], e))
                return False
            _remove(have.pop(0))
    for old in have:
        if old <= n - KEEP:
            await sleep_ms(0)
            _remove(old)
    return True


def _pieces(text):
    for i in range(0, len(text), _PIECE):
        yield text[i : i + _PIECE]


def _path(n):
    return "%s%d.json" % (PREFIX, n)


def _remove(n):
    try:
        os.remove(_path(n))
    except OSError:
        pass


def numbers():
    """The kept reports' numbers, oldest first."""
    try:
        names = os.listdir(crashlog.DIR)
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith("report-") and name.endswith(".json"):
            try:
                out.append(int(name[7:-5]))
            except ValueError:
                pass
    out.sort()
    return out


def load():
    """(reports, newest first; warnings for any that are not intact)."""
    out, warnings = [], []
    for n in reversed(numbers()):
        rec, warn = crashlog.load_sealed(_path(n))
        if warn:
            warnings.append(warn)
        elif rec is not None:
            out.append(rec)
    return out, warnings


def clear():
    """Remove every kept report; returns how many went."""
    have = numbers()
    for n in have:
        _remove(n)
    return len(have)
