# The console's read-only commands (loaded for one command, then let go: see console.py).
from outstack.errors import OutstackError


def proc(console, name):
    p = console.kernel.names.get(name)
    if p is None:
        raise OutstackError("no server %r: the servers are %s"
                            % (name, ", ".join(sorted(console.kernel.names)) or "none"))
    return p


def servers(console):
    import gc
    from outstack import safemode
    from outstack.debug.console import Stream

    k = console.kernel
    gc.collect()
    head = {"uptime_ms": safemode.uptime_ms(), "free": gc.mem_free(), "alloc": gc.mem_alloc(),
            "dispatched": k.dispatched, "over_budget": k.over_budget,
            "levels": k.levels(), "fair_turns": k.fair_turns}
    st = console.system.check.state if console.system.check else {}
    rows = [_row(p) for p in k.names.values()]  # what can fail (imports, RAM) fails here
    rows += [{"name": n, "state": "quarantined"} for n in st.get("quarantine", ()) if n not in k.names]
    return Stream(_json(head, rows))


def _json(head, rows):
    # One row at a time: a Pico's heap has no room for the whole table as one JSON string.
    import json

    yield json.dumps(head)[:-1] + ', "servers": ['
    for i, r in enumerate(rows):
        yield (", " if i else "") + json.dumps(r)
    yield "]}"


def _row(p):
    import sys
    from outstack.debug.mem import size_of

    log = sys.modules.get("outstack.log")  # not loaded: nothing has logged (and no RAM spent)

    mem, whole = size_of(p.server) if p.server is not None else (0, True)
    w = p.watch
    return {"name": p.name, "state": "running" if p.alive else "down",
            "pri": p.priority, "restarts": p.restarts, "inbox": p.inbox.count,
            "high": p.inbox.high, "size": p.inbox.size, "in": p.handled, "out": p.sent,
            "max_us": p.max_us, "busy_us": p.busy_us, "over": p.over_budget,
            "lost": p.lost, "rejected": p.rejected, "mem": mem, "mem_whole": whole,
            "level": log.level_of(p.name) if log else None,
            "trace": w is not None and w.trace is not None,
            "record": w.ring.size if w is not None and w.ring is not None else 0,
            "fault": p.fault.kind if p.fault is not None else None,
            "error": None if p.last_error is None else "%s: %s" % (
                type(p.last_error).__name__, p.last_error)}


def info(console, name):
    p = proc(console, name)
    s = p.spec
    row = _row(p)
    row["spec"] = {"restart": s.restart, "inbox": s.inbox, "grants": s.grants,
                   "publishes": s.publishes, "subscribes": s.subscribes,
                   "provides": s.provides, "depends": s.depends, "config": s.config,
                   "budget_us": p.budget_us, "watchdog_ms": s.watchdog_ms,
                   "essential": s.essential}
    return row


def log(console, name, n="16"):
    from outstack import log
    from time import ticks_ms

    proc(console, name)
    return {"server": name, "level": log.level_of(name), "backend": log.backend(),
            "now": ticks_ms(), "records": log.records(name)[-count(n):]}


def trace_all(console):
    from time import ticks_ms

    t = console.kernel.trace
    items = [(ts, s, m if isinstance(m, str) else repr(m)) for ts, s, m in t.items()] if t else []
    return {"now": ticks_ms(), "trace": items,
            "traced": [p.name for p in console.kernel.names.values()
                       if p.watch is not None and p.watch.trace is not None]}


def graph(console):
    return _tree(console.system.top)


def mem(console):
    import gc

    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc()}


def count(text, least=1):
    try:
        n = int(text)
    except ValueError:
        raise ValueError("%r is not a number" % text)
    if n < least:
        raise ValueError("%d is too small (at least %d)" % (n, least))
    return n


def _tree(sup):
    kids = []
    for c in sup.children:
        if c.sup is not None:
            kids.append(_tree(c.sup))
            continue
        s = c.spec
        p = c.proc
        kids.append({"name": s.name, "alive": p is not None and p.alive,
                     "restart": s.restart, "depends": s.depends, "provides": s.provides,
                     "grants": s.grants, "subscribes": s.subscribes, "publishes": s.publishes})
    return {"supervisor": sup.name, "strategy": sup.strategy, "intensity": sup.intensity,
            "period_ms": sup.period_ms, "restarts": sup.total_restarts, "children": kids}
