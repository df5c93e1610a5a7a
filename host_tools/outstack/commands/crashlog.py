"""`outstack crashlog --port PORT [--clear] [--json]`: the board's black box. Reading it
interrupts the firmware for a moment (raw REPL), then soft-resets the board into it again."""

import json

from ..errors import CliError
from ..transport import open_port, raw_eval, restart

READ = ("__import__('json').dumps((lambda c, r: {'record': c.load(), 'state': c.load_state(), "
        "'reports': r.load(), 'config': c.load_sealed(c.CONFIG_ERRORS)})"
        "(__import__('outstack.crashlog', None, None, ('load',)), "
        "__import__('outstack.reports', None, None, ('load',))))")
CLEAR = ("(lambda c, s, r, p: (c.clear(), s.clear_quarantine(), r.clear(), p.clear()))"
         "(__import__('outstack.crashlog', None, None, ('clear',)), "
         "__import__('outstack.safemode', None, None, ('clear_quarantine',)), "
         "__import__('outstack.debug.record', None, None, ('clear',)), "
         "__import__('outstack.reports', None, None, ('clear',)))")


def run(args):
    with open_port(args.port) as link:
        said = raw_eval(link, args.port, READ, "reading its crash log (is outstack on it?)")
        if args.clear:
            raw_eval(link, args.port, CLEAR, "clearing its crash log")
    try:
        data = json.loads(said)
    except json.JSONDecodeError:
        raise CliError(f"the board on {args.port} sent no crash log: {said[:200]!r} "
                       f"(is the outstack framework on it?)") from None
    print(json.dumps(data, indent=2) if args.json else render(data))
    if args.clear:
        print("cleared: crash record and crash reports removed, quarantine lifted, "
              "boot-loop streak reset")
    restart(args.port)


def render(data) -> str:
    (rec, warn), (state, warn2) = data["record"], data["state"]
    lines = [f"warning: {w}" for w in (warn, warn2) if w]
    lines.append(_record(rec) if rec else "no crash record")
    reports, bad = data.get("reports") or ([], [])
    lines += [f"warning: {w}" for w in bad]
    lines.append(f"last {len(reports)} crash report(s), newest first:" if reports
                 else "no crash reports")
    lines += [report(r) for r in reports]
    said, warn3 = data.get("config") or (None, None)
    if warn3:
        lines.append(f"warning: {warn3}")
    if said:
        lines.append(f"said at boot {said.get('boot')}:")
        lines += [f"  {text}" for text in said.get("errors", [])]
    quarantine = ", ".join(state.get("quarantine", [])) or "none"
    lines.append(f"boots {state.get('boots', 0)}, crash-resets {state.get('crashes', 0)}, "
                 f"streak {state.get('streak', 0)} ({state.get('streak_ms', 0) / 1000:.0f} s of "
                 f"uptime); quarantined: {quarantine}")
    return "\n".join(lines)


def _record(rec) -> str:
    rows = [f"last crash: {rec.get('kind')} (reset cause {rec.get('cause', 'not yet reset')})"]
    for key, label in (("server", "server"), ("msg", "message"), ("ms", "ran (ms)"),
                       ("reason", "reason"), ("uptime_ms", "uptime (ms)"), ("handled", "handled"),
                       ("restarts", "restarts"), ("free", "free RAM"), ("addr", "address"),
                       ("pc", "pc"), ("hw", "board saw"), ("note", "note")):
        if rec.get(key) not in (None, "", 0) or key == "server":
            rows.append(f"  {label:<12} {rec.get(key)}")
    if rec.get("tb"):
        rows.append("  traceback:")
        rows += [f"    {line}" for line in rec["tb"].splitlines()]
    if rec.get("msgs"):  # a recorded server: what it was handling when the board went down
        rows.append("  last messages it received (kind, msg, arg):")
        rows += [f"    {kind:<5} {msg} {arg}" for kind, _, msg, arg in rec["msgs"]]
    return "\n".join(rows)


def report(r) -> str:
    """One crash report from the board's ring: a head line and its traceback, indented."""
    head = (f"  #{r.get('n')} boot {r.get('boot')}, up {r.get('uptime_ms', 0) / 1000:.1f} s: "
            f"{r.get('server')} crashed: {r.get('error')} (restarts so far {r.get('restarts')})")
    if r.get("off"):
        head += "; stopped, not restarted: a config error"
    return "\n".join([head] + [f"      {line}" for line in (r.get("tb") or "").splitlines()])
