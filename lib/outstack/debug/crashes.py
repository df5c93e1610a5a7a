# Console commands loaded for one command and let go after (console._free): the help text,
# the crash records and a server's recording. Each takes the Console first.
from outstack.errors import OutstackError

HELP = (
    ("servers", "every server: state, restarts, inbox, messages in/out, longest handler, memory"),
    ("info NAME", "one server in detail, with its spec and last error"),
    ("log NAME [N]", "the last N records of NAME's log ring"),
    ("level NAME LEVEL", "set NAME's log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)"),
    ("trace [NAME on|off]", "switch tracing of NAME; without arguments, the shared trace"),
    ("record NAME N|off", "keep NAME's last N messages (for crash records and replay)"),
    ("graph", "the supervision tree with dependencies, grants and topics"),
    ("restart NAME", "stop and start NAME"),
    ("fault NAME crash|hang|slow MS|leak BYTES|off", "inject a fault (testing recovery)"),
    ("crashes [clear]", "the board's last crash record, the last crash reports (newest first), "
     "the recorded servers' records and this boot's config errors (or remove the servers' ones)"),
    ("recording NAME", "NAME's whole crash record with its messages (for outstack replay)"),
    ("mem", "heap use"),
    ("help", "this list"),
    ("challenge", "a fresh nonce to sign a command over (the CLI does it with --key)"),
)


def help(console):
    return [list(h) for h in HELP]


def crashes(console, what=None):
    # What this command loads and nothing had loaded before goes again after it (no await
    # in here: no crash report can be writing meanwhile).
    import sys
    from outstack import unload

    had = [n for n in _LOADS if n in sys.modules]
    try:
        return _crashes(console, what)
    finally:
        for n in _LOADS:
            if n not in had:
                pkg, _, leaf = n.rpartition(".")
                unload(pkg, (leaf,))


_LOADS = ("outstack.reports", "outstack.debug.record")


def _crashes(console, what):
    from outstack import crashlog, reports
    from outstack.debug import record

    if what == "clear":
        return {"cleared": record.clear(), "reports": reports.clear()}
    if what is not None:
        raise ValueError("crashes %s: say clear, or nothing" % what)
    board, warn = crashlog.load()
    recs, warnings = record.summaries()
    if warn:
        warnings.append(warn)
    kept, bad = reports.load()
    warnings += bad
    procs = console.kernel.names.values()
    live = {p.name: "%s: %s" % (type(p.last_error).__name__, p.last_error)
            for p in procs if p.last_error is not None}
    off = {p.name: p.off for p in procs if p.off is not None}
    return {"board": board, "reports": kept, "servers": recs, "last_errors": live,
            "off": off, "boot_errors": console.system.errors, "warnings": warnings}


def recording(console, name):
    from outstack.debug import record
    from outstack.debug.console import Stream

    ok, why = record.check(name)
    if not ok:
        raise OutstackError(why)
    return Stream(record.pieces(name))
