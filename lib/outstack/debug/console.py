# The console's commands, run on the board against the live system. Each takes a line of
# words and returns plain data (dicts, lists, numbers, text) that the host formats; the
# same commands answer on the live prompt (USB REPL), UART1 and TCP. Bad input raises
# ValueError or OutstackError with a message for a person; the system is never touched then.
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
)


async def _nothing():
    pass


_c = _nothing()
_CORO = type(_c)  # what calling an async def gives (a generator, on MicroPython)
_c.close()


class Console:
    def __init__(self, system):
        self.system = system
        self.kernel = system.kernel
        self.commands = [n[2:] for n in dir(self) if n.startswith("c_")]

    async def run(self, line):
        words = line.split()
        if not words:
            raise ValueError("empty command: try help")
        cmd, args = words[0], words[1:]
        # Matched by value first: getattr would keep every word a link sends (interned).
        fn = getattr(self, "c_" + cmd, None) if cmd in self.commands else None
        if fn is None:
            raise ValueError("unknown command %r: one of %s"
                             % (cmd, ", ".join(h[0].split()[0] for h in HELP)))
        out = fn(*args)
        if isinstance(out, _CORO):  # an async command (restart waits for the stop)
            out = await out
        return out

    def _proc(self, name):
        p = self.kernel.names.get(name)
        if p is None:
            raise OutstackError("no server %r: the servers are %s"
                                % (name, ", ".join(sorted(self.kernel.names)) or "none"))
        return p

    # ----- commands ----------------------------------------------------------------------
    def c_help(self):
        return [list(h) for h in HELP]

    def c_servers(self):
        import gc
        from outstack import safemode

        rows = [self._row(p) for p in self.kernel.names.values()]
        st = self.system.check.state if self.system.check else {}
        for name in st.get("quarantine", ()):
            if name not in self.kernel.names:
                rows.append({"name": name, "state": "quarantined"})
        return {"uptime_ms": safemode.uptime_ms(), "free": gc.mem_free(),
                "alloc": gc.mem_alloc(), "dispatched": self.kernel.dispatched,
                "over_budget": self.kernel.over_budget, "servers": rows,
                "levels": self.kernel.levels(), "fair_turns": self.kernel.fair_turns}

    def _row(self, p):
        from outstack import log
        from outstack.debug.mem import size_of

        mem, whole = size_of(p.server) if p.server is not None else (0, True)
        w = p.watch
        return {"name": p.name, "state": "running" if p.alive else "down",
                "pri": p.priority, "restarts": p.restarts, "inbox": p.inbox.count,
                "high": p.inbox.high, "size": p.inbox.size, "in": p.handled, "out": p.sent,
                "max_us": p.max_us, "busy_us": p.busy_us, "over": p.over_budget,
                "lost": p.lost, "rejected": p.rejected, "mem": mem, "mem_whole": whole,
                "level": log.level_of(p.name),
                "trace": w is not None and w.trace is not None,
                "record": w.ring.size if w is not None and w.ring is not None else 0,
                "fault": p.fault.kind if p.fault is not None else None,
                "error": None if p.last_error is None else "%s: %s" % (
                    type(p.last_error).__name__, p.last_error)}

    def c_info(self, name):
        p = self._proc(name)
        s = p.spec
        row = self._row(p)
        row["spec"] = {"restart": s.restart, "inbox": s.inbox, "grants": s.grants,
                       "publishes": s.publishes, "subscribes": s.subscribes,
                       "provides": s.provides, "depends": s.depends, "config": s.config,
                       "budget_us": p.budget_us, "watchdog_ms": s.watchdog_ms,
                       "essential": s.essential}
        return row

    def c_log(self, name, n="16"):
        from outstack import log

        self._proc(name)
        from time import ticks_ms

        return {"server": name, "level": log.level_of(name), "backend": log.backend(), "now": ticks_ms(),
                "records": log.records(name)[-_count(n):]}

    def c_level(self, name, level):
        from outstack import log

        self._proc(name)
        return {"server": name, "level": log.set_level(name, level)}

    def c_trace(self, name=None, onoff=None):
        from outstack.debug.watch import watch
        from time import ticks_ms

        if name is None:
            t = self.kernel.trace
            items = [(ts, s, m if isinstance(m, str) else repr(m)) for ts, s, m in t.items()] if t else []
            return {"now": ticks_ms(), "trace": items,
                    "traced": [p.name for p in self.kernel.names.values()
                               if p.watch is not None and p.watch.trace is not None]}
        self._proc(name)
        if onoff not in ("on", "off"):
            raise ValueError("trace %s: say on or off" % name)
        watch(self.kernel, name, trace=onoff == "on")
        return {"server": name, "trace": onoff == "on"}

    def c_record(self, name, n=None):
        from outstack.debug.watch import watch

        self._proc(name)
        if n is None:
            raise ValueError("record %s: say how many messages to keep, or off" % name)
        size = 0 if n == "off" else _count(n)
        watch(self.kernel, name, record=size)
        return {"server": name, "record": size}

    def c_graph(self):
        return _tree(self.system.top)

    async def c_restart(self, name):
        p = self._proc(name)
        if not await self.system.top.restart(name):
            raise OutstackError("%r is not run by a supervisor" % name)
        return {"server": name, "state": "running" if p.alive else "down",
                "restarts": p.restarts}

    def c_fault(self, name, kind=None, amount="0"):
        from outstack.debug import fault

        self._proc(name)
        if kind is None:
            raise ValueError("fault %s: say which: %s" % (name, ", ".join(fault.KINDS)))
        return {"server": name, "said": fault.inject(self.system, name, kind, _count(amount, 0))}

    def c_crashes(self, what=None):
        from outstack import crashlog, reports
        from outstack.debug import record

        if what == "clear":
            return {"cleared": record.clear(), "reports": reports.clear()}
        if what is not None:
            raise ValueError("crashes %s: say clear, or nothing" % what)
        board, warn = crashlog.load()
        recs, warnings = record.summaries()
        kept, bad = reports.load()
        warnings += bad
        if warn:
            warnings.append(warn)
        live = {p.name: "%s: %s" % (type(p.last_error).__name__, p.last_error)
                for p in self.kernel.names.values() if p.last_error is not None}
        off = {p.name: p.off for p in self.kernel.names.values() if p.off is not None}
        return {"board": board, "reports": kept, "servers": recs, "last_errors": live,
                "off": off, "boot_errors": self.system.errors, "warnings": warnings}

    def c_recording(self, name):
        from outstack.debug import record

        ok, why = record.check(name)
        if not ok:
            raise OutstackError(why)
        return Stream(record.pieces(name))

    def c_mem(self):
        import gc

        gc.collect()
        return {"free": gc.mem_free(), "alloc": gc.mem_alloc()}


def _count(text, least=1):
    try:
        n = int(text)
    except ValueError:
        raise ValueError("%r is not a number" % text)
    if n < least:
        raise ValueError("%d is too small (at least %d)" % (n, least))
    return n


class Stream:
    # An answer too big for RAM at once: JSON text in pieces, sent as they are read.
    def __init__(self, pieces):
        self.pieces = pieces


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


async def answer_for(server, line):
    """answer() for a server that carries the console on a link: it needs the "debug"
    right (the System); without it, the answer is an error, not a crash of the link."""
    import json

    try:
        system = server.right("debug")
    except OutstackError as e:
        return (json.dumps({"error": str(e)}),)
    return await answer(system, line)


async def answer(system, line):
    """One console line -> its answer as JSON text, {"ok": data} or {"error": "..."}, in
    pieces (an iterable of str/bytes); never raises."""
    import json

    try:
        if system.console is None:
            system.console = Console(system)
        data = await system.console.run(line)
        if isinstance(data, Stream):
            return _wrap(data.pieces)
        data = {"ok": data}
    except TypeError as e:  # wrong number of words for the command
        data = {"error": "%s: wrong arguments (%s); try help" % (line.split()[0], e)}
    except (ValueError, OutstackError, KeyError) as e:
        data = {"error": str(e)}
    except Exception as e:
        data = {"error": "%s failed: %s: %s" % (line, type(e).__name__, e)}
    try:
        return (json.dumps(data),)
    except Exception as e:
        return (json.dumps({"error": "the answer could not be encoded: %r" % e}),)


def _wrap(pieces):
    yield '{"ok": '
    for p in pieces:
        yield p
    yield "}"
