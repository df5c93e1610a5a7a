# What the board tells the fleet: its birth (retained, with the last will beside it), its
# heartbeat (versions of every module, uptime, boots, reset cause, restarts, crashes, heap)
# and the crash reports it has kept since it last said (outstack.reports' ring).
import gc
import sys
import json
from time import ticks_ms, ticks_diff
import outstack
from outstack import crashlog, hal

_OTA_STATE = "/.outstack/ota/state.json"  # written by outstack.ota.apply


def _ota():
    st = crashlog.load_sealed(_OTA_STATE)[0]
    return st if isinstance(st, dict) else {}


def _boots():
    st = crashlog.load_state()[0]
    return st["boots"], st["crashes"]


def birth():
    boot, _ = _boots()
    return json.dumps({"state": "online", "boot": boot, "fw": outstack.__version__,
                       "seq": _ota().get("seq", 0)})


def heartbeat(srv, n):
    from outstack.ota import slots

    gc.collect()
    ota = _ota()
    boot, crashes = _boots()
    restarts = 0
    for p in srv._p.kernel.names.values():
        restarts += p.restarts
    return json.dumps({
        "n": n, "fw": outstack.__version__, "seq": ota.get("seq", 0), "running": slots.read()[0],
        "versions": ota.get("versions", {}), "up": ticks_diff(ticks_ms(), srv.started) // 1000,
        "boot": boot, "reset": hal.reset_cause(), "restarts": restarts, "crashes": crashes,
        "free": gc.mem_free(), "ota": srv.last,
    })


def crash_reports(srv):
    """[(number, report as JSON)] of the kept crash reports newer than srv.reported, at most
    the two newest, oldest first. Looks at flash only on the first beat after boot and after
    a crash (outstack.reports is imported by the first one); a report still being written
    waits for the next beat."""
    rep = sys.modules.get("outstack.reports")
    if srv.reported >= 0 and (rep is None or rep._next - 1 <= srv.reported):
        return []
    from outstack import reports

    out = []
    for n in reports.numbers()[-2:]:
        if n > srv.reported:
            rec = crashlog.load_sealed(reports._path(n))[0]
            if not isinstance(rec, dict):
                break
            out.append((n, json.dumps(rec)))
    if srv.reported < 0 and not out:
        srv.reported = 0  # nothing kept: from here only a crash makes us look
    return out
