# Per-server message watch for field debugging. Recording keeps the last N messages a
# server received, with timestamps and kind (for the crash record and replay); tracing adds
# each message to one ring shared by every traced server, to follow the flow between them.
# Both are preallocated rings: watching a server allocates nothing per message (except a
# checkpoint, below, once every N messages).
#
# Replay needs every message since a known state. A recording starts at the server's
# (re)start; when the ring is about to lose the first message since then, a server that
# defines save() is checkpointed (its save() taken as the new starting state), so the ring
# always holds everything since the checkpoint. A server without save() replays from a
# fresh start with the messages the ring still holds, and the record says so.
from micropython import const
from time import ticks_ms
from outstack.server import Server, Subscription

CAST = const(0)
CALL = const(1)
PUB = const(2)
KINDS = ("cast", "call", "pub")


class Ring:
    def __init__(self, size, kinds=False):
        self.size = size
        self.t = [0] * size
        self.a = [None] * size
        self.b = [None] * size
        self.k = bytearray(size if kinds else 0)  # message kinds (recording rings only)
        self.n = 0  # entries ever added; the ring holds the last `size` of them

    def add(self, t, a, b):
        i = self.n % self.size
        self.t[i] = t
        self.a[i] = a
        self.b[i] = b
        self.n += 1

    def items(self, since=0):
        """Oldest first: [(ticks_ms, a, b)] (allocates: for readers, not the message path)."""
        first = max(since, self.n - self.size)
        return [(self.t[i % self.size], self.a[i % self.size], self.b[i % self.size])
                for i in range(first, self.n)]


class Watch:
    def __init__(self, record=0, trace=None):
        self.ring = Ring(record, True) if record else None  # (t, msg, arg) received
        self.trace = trace  # the kernel's shared Ring of (t, server, msg), or None
        self.base = 0  # ring count at the replay's starting state
        self.state = None  # that starting state: the server's save(), or what init got
        self.saves = False  # the server defines save(): it can be checkpointed
        self.exact = False  # every message since the starting state is known

    def started(self, proc, state, fresh):
        """The server (re)started with `state` (fresh) or is already running (not fresh)."""
        self.saves = type(proc.server).save is not Server.save
        self.base = self.ring.n if self.ring is not None else 0
        self.state = state
        self.exact = fresh
        if not fresh and self.saves and proc.server is not None:
            self.state = proc.server.save()
            self.exact = True

    def seen(self, proc, msg, arg, src):
        t = ticks_ms()
        r = self.ring
        if r is not None:
            if r.n - self.base >= r.size:  # the oldest message since base is about to go
                if self.saves:
                    self.state = proc.server.save()
                    self.base = r.n
                    self.exact = True
            r.k[r.n % r.size] = CAST if src is None else PUB if src.__class__ is Subscription else CALL
            r.add(t, msg, arg)
        if self.trace is not None:
            self.trace.add(t, proc.name, msg)

    def evidence(self):
        """What replay needs, kept at a crash without copying the ring (the server is down
        and receives nothing until its restart, which starts a new base)."""
        return Evidence(self)


class Evidence:
    def __init__(self, w):
        r = self.ring = w.ring
        self.n = r.n
        self.first = max(w.base, r.n - r.size)  # the first message since the starting state
        self.lost = self.first - w.base
        self.exact = w.exact and self.lost == 0
        self.state = w.state

    def msgs(self, last=0):
        """(kind, ticks_ms, msg, arg), oldest first, of what the ring still holds."""
        r = self.ring
        first = max(self.first, r.n - r.size, self.n - last if last else 0)
        for i in range(first, min(self.n, r.n)):
            j = i % r.size
            yield KINDS[r.k[j]], r.t[j], r.a[j], r.b[j]


def watch(kernel, name, record=None, trace=None):
    """Switch recording (a ring of `record` messages, 0: off) and tracing (True/False) of
    server `name` at run time; a setting left None keeps what it was."""
    p = kernel.names[name]
    old = p.watch
    kept = ring = old.ring if old is not None else None
    if record is not None and (ring is None or ring.size != record):
        ring = Ring(record, True) if record else None
    tracing = (old is not None and old.trace is not None) if trace is None else trace
    if tracing and kernel.trace is None:
        kernel.trace = Ring(64)
    if ring is None and not tracing:
        p.watch = None
        return None
    w = Watch(0, kernel.trace if tracing else None)
    w.ring = ring
    if ring is not None and ring is kept:  # the same recording goes on
        w.base, w.state, w.saves, w.exact = old.base, old.state, old.saves, old.exact
    elif ring is not None and p.server is not None:
        w.started(p, None, p.handled == 0 and p.restarts == 0)
    p.watch = w
    return w
