"""`outstack console --port PORT [COMMAND...]` and `outstack top --port PORT`: inspect a
running board without stopping it. With a command, run it and exit (exit 1 if the board
refused it); without, a prompt that takes commands until EOF or `quit`."""

import json
import sys
import time

from ..console import BoardError, ask, connect, find_key, load_signer
from ..errors import CliError
from .crashlog import _record, report

LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def run(args):
    key = load_signer(find_key(args))
    ch = connect(args.port, args.via)
    ch.key = key
    try:
        if args.words:
            return _one(ch, " ".join(args.words), args.json)
        return _interactive(ch, args.json)
    finally:
        ch.close()


def _one(ch, line, as_json) -> int:
    try:
        data = ask(ch, line)
    except BoardError as e:
        raise CliError(f"{line.split()[0]}: {e}") from None
    print(json.dumps(data, indent=2) if as_json else render(line.split()[0], data))
    return 0


def _interactive(ch, as_json) -> int:
    print("outstack console: `help` lists the commands; Ctrl-D or `quit` leaves")
    while True:
        try:
            line = input("outstack> ").strip()
        except EOFError:
            print()
            return 0
        if line in ("quit", "exit"):
            return 0
        if not line:
            continue
        try:
            data = ask(ch, line)
            print(json.dumps(data, indent=2) if as_json else render(line.split()[0], data))
        except BoardError as e:
            print(f"error: {e}")


def top(args):
    ch = connect(args.port, args.via)
    tty = sys.stdout.isatty()
    n = 0
    try:
        while args.count is None or n < args.count:
            data = ask(ch, "servers")
            text = servers(data)
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J" + text + "\n")  # redraw in place
            else:
                sys.stdout.write(text + "\n\n")
            sys.stdout.flush()
            n += 1
            if args.count is None or n < args.count:
                time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        ch.close()
    return 0


def render(cmd, data) -> str:
    fn = {"servers": servers, "info": info, "log": log, "trace": trace, "graph": graph,
          "crashes": crashes, "help": help_, "mem": mem, "level": level, "record": record,
          "restart": restarted, "challenge": lambda d: d["nonce"]}.get(cmd)
    if fn:
        return fn(data)
    if isinstance(data, dict) and "said" in data:
        return data["said"]
    return ", ".join(f"{k} {v}" for k, v in data.items()) if isinstance(data, dict) else str(data)


def _kb(n) -> str:
    return f"{n / 1024:.1f}K"


def servers(d) -> str:
    head = (f"uptime {d['uptime_ms'] / 1000:.0f} s   heap {_kb(d['alloc'])} used, "
            f"{_kb(d['free'])} free   dispatched {d['dispatched']}   over budget "
            f"{d['over_budget']}")
    rows = [("NAME", "STATE", "PRI", "RESTARTS", "INBOX", "HIGH", "IN", "OUT", "MAX ms",
             "MEM", "LOG", "WATCH")]
    for s in sorted(d["servers"], key=lambda s: s["name"]):
        if "pri" not in s:
            rows.append((s["name"], s["state"]) + ("",) * 10)
            continue
        watch = ",".join(w for w, on in (("trace", s["trace"]), (f"rec{s['record']}", s["record"]),
                                          (f"fault:{s['fault']}", s["fault"])) if on) or "-"
        rows.append((s["name"], s["state"], str(s["pri"]), str(s["restarts"]),
                     f"{s['inbox']}/{s['size']}", str(s["high"]), str(s["in"]), str(s["out"]),
                     f"{s['max_us'] / 1000:.1f}", _kb(s["mem"]) + ("" if s["mem_whole"] else "+"),
                     LEVELS.get(s["level"], str(s["level"] or "-")), watch))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    errs = [f"  {s['name']}: last error {s['error']}" for s in d["servers"] if s.get("error")]
    return "\n".join(lines + errs)


def info(s) -> str:
    lines = [f"{s['name']}: {s['state']}, priority {s['pri']}, restarts {s['restarts']}",
             f"  inbox {s['inbox']}/{s['size']} (high {s['high']}), in {s['in']}, out {s['out']}, "
             f"lost {s['lost']}, rejected {s['rejected']}",
             f"  handlers: longest {s['max_us']} us, total {s['busy_us']} us, over budget "
             f"{s['over']} (budget {s['spec']['budget_us']} us)",
             f"  memory about {s['mem']} bytes; log level "
             f"{LEVELS.get(s['level'], s['level'] or '-')}; trace {'on' if s['trace'] else 'off'}; "
             f"recording {s['record'] or 'off'}"]
    if s.get("fault"):
        lines.append(f"  fault armed: {s['fault']}")
    if s.get("error"):
        lines.append(f"  last error: {s['error']}")
    for k, v in sorted(s["spec"].items()):
        if isinstance(v, list):
            v = ", ".join(map(str, v)) or "-"
        lines.append(f"  {k:<11} {v}")
    return "\n".join(lines)


def log(d) -> str:
    level = LEVELS.get(d["level"], d["level"]) if d["level"] else "- (it has not logged yet)"
    lines = [f"{d['server']}: level {level} ({d['backend']})"]
    if not d["records"]:
        lines.append("  (no records)")
    for t, lvl, text in d["records"]:
        lines.append(f"  {_ago(t, d['now'])}  {LEVELS.get(lvl, lvl):<8} {text}")
    return "\n".join(lines)


def trace(d) -> str:
    if "trace" in d and isinstance(d["trace"], bool):
        return f"{d['server']}: tracing {'on' if d['trace'] else 'off'}"
    lines = [f"traced: {', '.join(d['traced']) or 'none'}"]
    for t, server, msg in d["trace"]:
        lines.append(f"  {_ago(t, d['now'])}  {server:<12} {msg}")
    return "\n".join(lines)


def _ago(t: int, now: int) -> str:
    # ticks_ms wrap at 2**30 on most ports; a record is never that old.
    return f"{-((now - t) % (1 << 30)) / 1000:9.3f}s"


def graph(d, depth=0) -> str:
    pad = "  " * depth
    lines = [f"{pad}supervisor {d['supervisor']} ({d['strategy']}, {d['intensity']} restarts "
             f"in {d['period_ms']} ms; {d['restarts']} so far)"]
    for c in d["children"]:
        if "supervisor" in c:
            lines.append(graph(c, depth + 1))
            continue
        bits = [f"{pad}  {c['name']}{'' if c['alive'] else ' (down)'} [{c['restart']}]"]
        for key, label in (("depends", "needs"), ("grants", "sends to"),
                           ("subscribes", "hears"), ("publishes", "publishes")):
            if c[key]:
                bits.append(f"{label} {', '.join(c[key])}")
        lines.append("  ".join(bits[:1]) + ("  " + "; ".join(bits[1:]) if bits[1:] else ""))
    return "\n".join(lines)


def crashes(d) -> str:
    if "cleared" in d:
        return (f"removed {d['cleared']} server crash record(s)"
                + (f" and {d['reports']} crash report(s)" if "reports" in d else ""))
    lines = [f"warning: {w}" for w in d["warnings"]]
    lines.append(_record(d["board"]) if d["board"] else "no board crash record")
    reports = d.get("reports", [])
    if reports:
        lines.append(f"last {len(reports)} crash report(s), newest first:")
        lines += [report(r) for r in reports]
    lines += [f"said at boot: {text}" for text in d.get("boot_errors", [])]
    for name, why in sorted(d.get("off", {}).items()):
        lines.append(f"server {name} does not run: {why}")
    for name, rec in sorted(d["servers"].items()):
        lines.append(f"server {name} crashed: {rec['error']} (after {rec['handled']} messages, "
                     f"restarts {rec['restarts']}); {rec.get('count', 0)} recorded messages kept"
                     + ("" if rec.get("exact") else ", not every one since its start")
                     + f": `outstack replay --server {name}` replays them")
        lines += [f"    {line}" for line in rec["tb"].splitlines()]
    for name, err in sorted(d["last_errors"].items()):
        if name not in d["servers"]:
            lines.append(f"server {name}: last error {err}")
    return "\n".join(lines)


def level(d) -> str:
    return f"{d['server']}: log level {LEVELS.get(d['level'], d['level'])}"


def record(d) -> str:
    n = d["record"]
    return f"{d['server']}: " + (f"recording its last {n} messages" if n else "not recording")


def restarted(d) -> str:
    if d["state"].startswith("restarting"):  # it carries this very link: answered first
        return f"{d['server']}: {d['state']}"
    return f"{d['server']}: restarted, {d['state']} (restarts {d['restarts']})"


def help_(d) -> str:
    w = max(len(c) for c, _ in d)
    return "\n".join(f"  {c:<{w}}  {text}" for c, text in d)


def mem(d) -> str:
    return f"heap: {d['alloc']} bytes used, {d['free']} free"
