# Per-server message watch for field debugging. Recording keeps the last N messages a
# server received, with timestamps (for the crash record and replay); tracing adds each
# message to one ring shared by every traced server, to follow the flow between them.
# Both are preallocated rings: watching a server allocates nothing per message.
from time import ticks_ms


class Ring:
    def __init__(self, size):
        self.size = size
        self.t = [0] * size
        self.a = [None] * size
        self.b = [None] * size
        self.n = 0  # entries ever added; the ring holds the last `size` of them

    def add(self, t, a, b):
        i = self.n % self.size
        self.t[i] = t
        self.a[i] = a
        self.b[i] = b
        self.n += 1

    def items(self):
        """Oldest first: [(ticks_ms, a, b)] (allocates: for readers, not the message path)."""
        first = max(0, self.n - self.size)
        return [(self.t[i % self.size], self.a[i % self.size], self.b[i % self.size])
                for i in range(first, self.n)]


class Watch:
    def __init__(self, record=0, trace=None):
        self.ring = Ring(record) if record else None  # (t, msg, arg) this server received
        self.trace = trace  # the kernel's shared Ring of (t, server, msg), or None

    def seen(self, proc, msg, arg):
        t = ticks_ms()
        if self.ring is not None:
            self.ring.add(t, msg, arg)
        if self.trace is not None:
            self.trace.add(t, proc.name, msg)


def watch(kernel, name, record=None, trace=None):
    """Switch recording (a ring of `record` messages, 0: off) and tracing (True/False) of
    server `name` at run time; a setting left None keeps what it was."""
    p = kernel.names[name]
    old = p.watch
    ring = old.ring if old is not None else None
    if record is not None:
        ring = Ring(record) if record else None
    tracing = (old is not None and old.trace is not None) if trace is None else trace
    if tracing and kernel.trace is None:
        kernel.trace = Ring(64)
    if ring is None and not tracing:
        p.watch = None
        return None
    w = Watch(0, kernel.trace if tracing else None)
    w.ring = ring
    p.watch = w
    return w
