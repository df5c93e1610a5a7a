# Servers own their state and are reached only through their one inbox. The user writes a
# Server subclass; the kernel runs it inside a Proc (its control block: inbox, rights,
# timers, subscriptions, counters) that outlives restarts of the server object.
from micropython import const
from time import ticks_ms, ticks_add
from outstack import errors
from outstack.inbox import Inbox
from outstack.kernel import Timer, BUDGET_US

_DEFERRED = const(4)  # calls one server may answer later, at once


class Server:
    # Override the handle_* methods and init/terminate/save; call the others.
    _p: "Proc"  # set by the kernel when the server starts
    def init(self, config, state):
        pass

    def handle_cast(self, msg, arg):
        raise errors.BadMessage("%r does not handle cast %r" % (self.name, msg))

    def handle_call(self, msg, arg):
        raise errors.BadMessage("%r does not handle call %r" % (self.name, msg))

    def handle_lag(self, topic, missed):
        pass  # `missed` messages of `topic` did not fit in the inbox

    def terminate(self, reason):
        pass

    def save(self):
        return None  # state handed to the next start of this server, if its spec asks

    @property
    def name(self):
        return self._p.name

    def try_cast(self, dest, msg, arg=None):
        self._p.client(dest).try_cast(msg, arg)

    def client(self, dest):
        return self._p.client(dest)

    def publish(self, topic, msg, arg=None):
        return self._p.publish(topic, msg, arg)

    def every(self, ms, msg, arg=None):
        return self._p.timer(msg, arg, ms, ms)

    def after(self, ms, msg, arg=None):
        return self._p.timer(msg, arg, 0, ms)

    def defer(self):
        return self._p.defer()

    def right(self, name):
        # The object behind a privileged act (e.g. "ota": the System, to swap servers),
        # handed out at boot only to servers whose spec lists the right.
        if name not in self._p.spec.rights or name not in self._p.kernel.rights:
            raise errors.NotPermitted("%r has no %r right: add it to its spec's rights"
                                      % (self.name, name))
        return self._p.kernel.rights[name]

    @property
    def log(self):
        # This server's logger (micropython-lib logging), whose ring the console reads.
        from outstack import log

        return log.get(self._p.name)

    def checkin(self):
        # Tell the software watchdog this server is making progress (spec.watchdog_ms).
        self._p.due = ticks_add(ticks_ms(), self._p.spec.watchdog_ms)

    def reply(self, handle, value):
        self._p.reply(handle, value)


class Subscription:
    def __init__(self, proc, topic):
        self.proc = proc
        self.topic = topic
        self.lag = 0


class Proc:
    def __init__(self, kernel, spec):
        self.kernel = kernel
        self.spec = spec
        self.name = spec.name
        self.priority = spec.priority
        self.budget_us = spec.budget_us or BUDGET_US
        self.inbox = Inbox(spec.inbox)
        self.wait_first = self.wait_last = None  # Clients waiting for room, linked by .next
        self.dclient: list = [None] * _DEFERRED
        self.dseq = [0] * _DEFERRED
        self.dgen = [0] * _DEFERRED
        self.clients = {}
        self.subs = []
        self.timers = []
        self.irqs = []
        self.server = None
        self.alive = False
        self.queued = False
        self.ready_at = 0  # ticks_us when it last became ready (the kernel's delay figure)
        self.caller = None
        self.caller_seq = 0
        self.msg = None  # the message being handled (for crash records)
        self.on_exit = None  # the supervisor's hook: on_exit(proc, reason)
        self.due = ticks_ms()  # software watchdog deadline (when spec.watchdog_ms)
        self.guard_restarts = -1  # self.restarts when the guard last crashed this server
        self.handled = self.busy_us = self.max_us = self.over_budget = 0
        self.lost = self.lagged = self.restarts = self.rejected = self.sent = 0
        self.last_error = None
        self.off = None  # why its supervisor stopped it for good (a config error), if it did
        self.watch = None  # outstack.debug.watch.Watch when recording/tracing, else None
        self.last_ring = None  # at the last crash: Watch.evidence() (recorded messages, state)
        self.fault = None  # an injected fault (outstack.debug.fault), for tests of recovery
        self.num = len(kernel.names) + 1  # its number in the board's noinit word (hal.noinit)
        kernel.names[spec.name] = self

    def attach(self, server, state=None):
        server._p = self
        self.fault = None  # a fresh start clears an injected fault
        self.server = server
        self._cast = server.handle_cast  # bound once: dispatch allocates nothing
        self._call = server.handle_call
        self.alive = True
        self.due = ticks_add(ticks_ms(), self.spec.watchdog_ms)
        for topic in self.spec.subscribes:
            sub = Subscription(self, topic)
            self.subs.append(sub)
            self.kernel.topics.setdefault(topic, []).append(sub)
        if self.watch is not None and self.watch.ring is not None:
            self.watch.started(self, state, True)  # a replay starts from here

    def deliver(self, msg, arg, src, seq):
        if not self.alive or not self.inbox.put(msg, arg, src, seq):
            return False
        self.kernel.make_ready(self)
        return True

    def pending(self):
        if self.inbox.count:
            return True
        for r in self.irqs:
            if r.count():
                return True
        return False

    def serve_one(self):
        for r in self.irqs:
            r.drain()
        ib = self.inbox
        if not ib.count:
            return False
        i = ib.head
        msg = ib.msg[i]  # one name per line: a 4-tuple unpack would allocate
        arg = ib.arg[i]
        src = ib.src[i]
        seq = ib.seq[i]
        ib.drop()
        self._room()
        self.msg = msg
        if self.watch is not None:  # recording or tracing switched on for this server
            self.watch.seen(self, msg, arg, src)
        k = self.kernel
        try:
            if src is None:
                k.run_handler(self, self._cast, msg, arg)
            elif src.__class__ is Subscription:
                if src.lag:
                    missed, src.lag = src.lag, 0
                    self.server.handle_lag(src.topic, missed)
                k.run_handler(self, self._cast, msg, arg)
            else:
                self.caller, self.caller_seq = src, seq
                value = k.run_handler(self, self._call, msg, arg)
                if self.caller is not None:
                    self.caller = None
                    src.answer(seq, value)
        except errors.BadMessage as e:  # the sender's fault: tell it, keep serving
            self.rejected += 1
            c, self.caller = self.caller, None
            if c is not None:
                c.fail(seq, errors.BadMessage, str(e))
            else:
                k.report_bad(self, msg, e)
        except Exception as e:  # let it crash: the supervisor decides what comes next
            self.crash(e)
        return True

    def _room(self):
        c = self.wait_first
        if c is not None:
            self._unlink(c, None)
            c.wake_for_room()

    def wait_room(self, c, first):
        # c waits for room at the back of the line; at the front if it was woken for room
        # and lost the slot. A list through the Clients: any number wait, none allocates.
        c.next = None
        if self.wait_first is None:
            self.wait_first = self.wait_last = c
        elif first:
            c.next, self.wait_first = self.wait_first, c
        else:
            self.wait_last.next = c  # type: ignore[union-attr]  # not None: wait_first is not
            self.wait_last = c

    def unwait(self, c):
        # c gave up waiting (timeout, cancel).
        prev = None
        w = self.wait_first
        while w is not None and w is not c:
            prev, w = w, w.next
        if w is not None:
            self._unlink(w, prev)

    def _unlink(self, c, prev):
        if prev is None:
            self.wait_first = c.next
        else:
            prev.next = c.next
        if self.wait_last is c:
            self.wait_last = prev
        c.next = None

    def client(self, dest):
        c = self.clients.get(dest)
        if c is None:
            if dest not in self.spec.grants:
                raise errors.NotPermitted("%r may not send to %r: add %r to its spec's grants"
                                          % (self.name, dest, dest))
            c = self.clients[dest] = self.kernel.client(dest, self.name)
            c.owner = self
        return c

    def publish(self, topic, msg, arg):
        if topic not in self.spec.publishes:
            raise errors.NotPermitted("%r may not publish on %r: add it to its spec's publishes"
                                      % (self.name, topic))
        sent = 0
        self.sent += 1
        for sub in self.kernel.topics.get(topic, ()):
            if sub.proc.deliver(msg, arg, sub, 0):
                sent += 1
            elif sub.proc.alive:
                sub.lag += 1
                sub.proc.lagged += 1
        return sent

    def timer(self, msg, arg, period, first):
        t = Timer(self.kernel, self, msg, arg, period)
        self.timers.append(t)
        t.start(first)
        return t

    def defer(self):
        if self.caller is None:
            raise errors.OutstackError("defer() outside handle_call of %r" % self.name)
        for i in range(_DEFERRED):
            if self.dclient[i] is None:
                self.dclient[i], self.dseq[i] = self.caller, self.caller_seq
                self.dgen[i] = (self.dgen[i] + 1) & 0xFFFF
                self.caller = None
                return i | self.dgen[i] << 8
        raise errors.OutstackError("%r already defers %d calls: answer some first"
                                   % (self.name, _DEFERRED))

    def reply(self, handle, value):
        i = handle & 0xFF
        if i < _DEFERRED and self.dclient[i] is not None and self.dgen[i] == handle >> 8:
            c, self.dclient[i] = self.dclient[i], None
            c.answer(self.dseq[i], value)

    def crash(self, exc):
        self.last_error = exc  # why it last died, for whoever asks (OTA health check, console)
        self.last_ring = None
        if self.watch is not None and self.watch.ring is not None:
            self.last_ring = self.watch.evidence()  # what led up to it, for the crash record
        caller, self.caller = self.caller, None
        if caller is not None:
            caller.fail(self.caller_seq, errors.ServerCrashed,
                        "%r crashed handling %r: %s: %s"
                        % (self.name, self.msg, type(exc).__name__, exc))
        self.release(errors.ServerDown, "%r crashed" % self.name)
        if self.on_exit:
            self.on_exit(self, exc)

    def release(self, kind, text):
        # Everything a dead server held goes: inbox, waiting senders, deferred calls,
        # timers, subscriptions. Callers learn at once.
        self.alive = False
        ib = self.inbox
        while ib.count:
            src = ib.src[ib.head]
            if src is None or src.__class__ is Subscription:
                self.lost += 1
            else:
                src.fail(ib.seq[ib.head], kind, text)
            ib.drop()
        while self.wait_first is not None:
            c = self.wait_first
            self._unlink(c, None)
            c.fail(-1, kind, text)
        for i in range(_DEFERRED):
            if self.dclient[i] is not None:
                self.dclient[i].fail(self.dseq[i], kind, text)
                self.dclient[i] = None
        for t in self.timers:
            t.stop()
        self.timers = []
        for sub in self.subs:
            self.kernel.topics[sub.topic].remove(sub)
        self.subs = []
        self.server = None
