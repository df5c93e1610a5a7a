# Crash records of recorded servers, for `outstack replay`: when a server whose messages
# are recorded crashes, its record (the messages since its starting state, that state, the
# config it ran with, its traceback) goes to flash, one sealed file per server, the latest
# crash each. Arguments are kept as repr() text; replay rebuilds them with eval(). A record
# is written and read a message at a time: its size never has to fit in RAM at once.
import json
import os
from binascii import crc32
from micropython import const
from outstack import crashlog

PREFIX = crashlog.DIR + "/rec-"
_TB_LINES = const(24)
_CHUNK = const(512)
_YIELD = const(32)  # messages written between yields to the loop


def traceback(exc):
    return crashlog.trim(exc, _TB_LINES)  # deeper than the black box's: replay compares it


def factory_of(spec):
    f = spec.factory
    if hasattr(f, "mod"):  # "module:Class" from a server table
        return "%s:%s" % (f.mod, f.cls)
    return "%s:%s" % (getattr(f, "__module__", "?"), getattr(f, "__name__", "?"))


def summary(proc, exc):
    ev = proc.last_ring
    return {"server": proc.name, "factory": factory_of(proc.spec), "config": proc.spec.config,
            "grants": list(proc.spec.grants), "publishes": list(proc.spec.publishes),
            "error": "%s: %s" % (type(exc).__name__, exc), "tb": traceback(exc),
            "handled": proc.handled, "restarts": proc.restarts, "state": repr(ev.state),
            "exact": ev.exact, "lost": ev.lost, "seen": ev.n, "count": ev.n - ev.first}


def _body(head, ev):
    # The record's JSON text, in pieces: the summary, then the messages one by one.
    yield json.dumps(head)[:-1] + ', "msgs": ['
    sep = ""
    for k, t, m, a in ev.msgs():
        yield sep + json.dumps((k, t, repr(m), repr(a)))
        sep = ", "
    yield "]}"


async def save(proc, exc):
    """Write the record of `proc`'s crash (a recorded server); never raises. It yields to
    the other servers every few messages: a long record on a slow board must not stall
    them (or the watchdog). The crashed server is down meanwhile, so its ring stays put."""
    path = PREFIX + proc.name + ".json"
    try:
        head = summary(proc, exc)
        await crashlog.write_sealed(path, lambda: _body(head, proc.last_ring), _YIELD)
        return True
    except Exception as e:  # a full flash must not stop the restart
        print("outstack: could not keep the crash record of %r: %r" % (proc.name, e))
        return False


def _names():
    try:
        return [n[4:-5] for n in os.listdir(crashlog.DIR)
                if n.startswith("rec-") and n.endswith(".json")]
    except OSError:
        return []


def check(name):
    """(intact, warning): read the record through once, in pieces, against its seal."""
    path = PREFIX + name + ".json"
    try:
        with open(path, "rb") as f:
            head = f.readline().decode().split()
            crc = 0
            while True:
                piece = f.read(_CHUNK)
                if not piece:
                    break
                crc = crc32(piece, crc)
    except OSError:
        return False, "no crash record of %r" % name
    if len(head) != 2 or head[0] != crashlog.MAGIC or int(head[1], 16) != crc & 0xFFFFFFFF:
        return False, "%s is corrupt (CRC mismatch): ignored" % path
    return True, None


def pieces(name):
    """The record's JSON text in pieces of bytes (after check())."""
    with open(PREFIX + name + ".json", "rb") as f:
        f.readline()
        while True:
            piece = f.read(_CHUNK)
            if not piece:
                return
            yield piece


def summaries():
    """{server: the record without its messages}, and warnings for corrupt ones."""
    out, warnings = {}, []
    for name in _names():
        ok, w = check(name)
        if not ok:
            warnings.append(w)
            continue
        text = b""
        for piece in pieces(name):  # the summary comes before the messages
            text += piece
            at = text.find(b', "msgs": [')
            if at >= 0:
                out[name] = json.loads(text[:at].decode() + "}")
                break
    return out, warnings


def clear(name=None):
    """Remove the kept records (of `name` only, if given); returns how many went."""
    gone = 0
    for n in _names():
        if name is None or n == name:
            try:
                os.remove(PREFIX + n + ".json")
                gone += 1
            except OSError:
                pass
    return gone
