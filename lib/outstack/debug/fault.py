# Fault injection, to test that a system recovers: the console arms one on a server and its
# next messages meet it. "crash" crashes the server at once; "hang" never returns from the
# next handler (the guard and the hardware watchdog must end it); "slow" adds MS of busy
# work to each handler; "leak" keeps BYTES more of the server's state per message. A
# restart clears it, as does "off". It wraps the server's handlers: nothing when unarmed.
import time
from outstack.errors import OutstackError

KINDS = ("crash", "hang", "slow", "leak", "off")


class InjectedFault(OutstackError):
    pass


class Fault:
    def __init__(self, proc, kind, amount):
        self.proc = proc
        self.kind = kind
        self.amount = amount
        self.cast = proc._cast
        self.call = proc._call
        self.hits = 0

    def _hit(self):
        self.hits += 1
        k = self.kind
        if k == "slow":
            end = time.ticks_add(time.ticks_us(), self.amount * 1000)
            while time.ticks_diff(end, time.ticks_us()) > 0:
                pass  # busy on purpose: a slow handler holds the loop
        elif k == "leak":
            s = self.proc.server  # held by the server, so its memory shows it and a restart frees it
            held = s.__dict__.get("_leaked")
            if held is None:
                held = s._leaked = []
            held.append(bytearray(self.amount))
        elif k == "hang":
            while True:
                pass  # never returns: only the guard or the watchdog ends this

    def on_cast(self, msg, arg):
        self._hit()
        return self.cast(msg, arg)

    def on_call(self, msg, arg):
        self._hit()
        return self.call(msg, arg)


def inject(system, name, kind, amount=0):
    """Arm `kind` on server `name`; returns what will happen, in words."""
    p = system.kernel.names.get(name)
    if p is None or not p.alive:
        raise OutstackError("%r is not running" % name)
    if kind not in KINDS:
        raise ValueError("unknown fault %r: one of %s" % (kind, ", ".join(KINDS)))
    f = p.fault
    if f is not None:  # one fault at a time: put the real handlers back first
        p._cast, p._call, p.fault = f.cast, f.call, None
    if kind == "off":
        return "%r: no fault armed" % name
    if kind == "crash":
        p.crash(InjectedFault("fault injected from the console"))
        return "%r crashed (injected); its supervisor decides what follows" % name
    if kind == "hang" and system.guard is None:
        raise OutstackError("no watchdog is armed (set watchdog_ms in the config): a hang "
                            "would stop this board until someone resets it")
    if kind in ("slow", "leak") and amount <= 0:
        raise ValueError("%s needs a positive amount (%s)" % (kind, "ms" if kind == "slow" else "bytes"))
    f = p.fault = Fault(p, kind, amount)
    p._cast, p._call = f.on_cast, f.on_call
    return "%r: %s armed for its next messages" % (name, kind)
