# A Client is one sender's preallocated handle on one server: `await c.call(msg, arg)`
# (then read c.value), `await c.cast(msg, arg)`, or `c.try_cast(msg, arg)` that never waits.
# It is itself the awaitable, a small state machine, so a steady-state call or cast
# allocates nothing. One operation at a time per Client: give each task its own.
# Back-pressure yields: an awaited call or cast into a full inbox waits its turn in line
# (any number of senders) up to its timeout, and one that fails has suspended at least once,
# so a retry loop can never starve the event loop.
from micropython import const
from time import ticks_ms, ticks_add, ticks_diff
from asyncio import core  # type: ignore[attr-defined]  # internals; not in the stubs
from outstack.kernel import park, unpark
from outstack import errors

TIMEOUT_MS = const(5000)
_IDLE = const(0)
_CAST = const(1)  # armed, not yet sent
_CALL = const(2)
_ROOM = const(3)  # waiting for room in the inbox
_REPLY = const(4)  # waiting for the reply
_DONE = const(5)
_FAILED = const(6)


class Client:
    def __init__(self, dest, sender="?"):
        self.dest = dest  # the server's Proc
        self.sender = sender
        self.owner = None  # the sending server's Proc, which counts what it sends
        self.value = None  # the last reply
        self.state = _IDLE
        self.op = _IDLE
        self.msg = self.arg = None
        self.seq = 0
        self.until = ticks_ms()
        self.task = None
        self.parked = False
        self.room = False
        self.next = None  # the next Client waiting for room in the same inbox
        self.err_kind = errors.ServerDown  # why it failed, when it did
        self.err_text = ""
        self._stop = StopIteration()

    def try_cast(self, msg, arg=None):
        p = self.dest
        if not p.alive:
            raise _down(p)("%r is not running%s (cast %r from %r)"
                           % (p.name, _off(p), msg, self.sender))
        if self.owner is not None:
            self.owner.sent += 1
        if not p.deliver(msg, arg, None, 0):
            raise errors.InboxFull("inbox of %r is full (%d); cast %r from %r handed back"
                                   % (p.name, p.inbox.size, msg, self.sender), msg, arg)

    def cast(self, msg, arg=None, timeout_ms=TIMEOUT_MS):
        return self._arm(_CAST, msg, arg, timeout_ms)

    def call(self, msg, arg=None, timeout_ms=TIMEOUT_MS):
        return self._arm(_CALL, msg, arg, timeout_ms)

    def _arm(self, op, msg, arg, timeout_ms):
        if self.state != _IDLE:
            raise RuntimeError("this Client is already in use: give each task its own")
        if self.owner is not None:
            self.owner.sent += 1
        self.op = self.state = op
        self.msg = msg
        self.arg = arg
        self.until = ticks_add(ticks_ms(), timeout_ms)
        return self

    def __iter__(self):
        return self

    def __next__(self):
        self.parked = False
        st = self.state
        if st == _CAST or st == _CALL:
            return self._send()
        if st == _ROOM:
            if self.room:
                return self._send()
            self.dest.unwait(self)
            return self._fail(errors.CallTimeout, "inbox of %r stayed full for the whole timeout"
                              % self.dest.name)
        if st == _DONE:
            self.state = _IDLE
            self._stop.__traceback__ = None
            raise self._stop
        if st == _FAILED:
            return self._fail(self.err_kind, self.err_text)
        return self._fail(errors.CallTimeout, "call %r to %r got no reply in time"
                          % (self.msg, self.dest.name))

    def _send(self):
        p = self.dest
        woken = self.state == _ROOM
        if not p.alive:
            self.err_kind = _down(p)
            self.err_text = "%r is not running%s" % (p.name, _off(p))
            self.state = _FAILED  # said after one suspension, like every failure
            self.until = ticks_ms()
        elif (woken or p.wait_first is None) and self._deliver(p):
            if self.op == _CAST:
                self.state = _IDLE
                self._stop.__traceback__ = None
                raise self._stop
            self.state = _REPLY
        else:
            self.state = _ROOM  # in line behind those already waiting
            self.room = False
            p.wait_room(self, woken)
        if ticks_diff(self.until, ticks_ms()) <= 0:
            self.until = ticks_ms()
        self.task = core.cur_task
        self.parked = True
        park(self.task, self.until)
        return None

    def _deliver(self, p):
        self.seq += 1
        return p.deliver(self.msg, self.arg, self if self.op == _CALL else None, self.seq)

    def _fail(self, kind, text):
        self.state = _IDLE
        raise kind(text + " (from %r)" % self.sender)

    def throw(self, exc, *rest):
        # Cancelled while waiting: asyncio has moved the task already.
        if self.state == _ROOM and self.room:
            self.dest._room()  # woken for a slot it will not take: the next in line gets it
        elif self.state == _ROOM:
            self.dest.unwait(self)
        self.state = _IDLE
        self.parked = False
        raise exc

    def _resume(self):
        if self.parked:
            self.parked = False
            unpark(self.task)

    # Called by the server side.
    def answer(self, seq, value):
        if self.state == _REPLY and seq == self.seq:
            self.value = value
            self.state = _DONE
            self._resume()

    def fail(self, seq, kind, text):
        # seq < 0: whatever this client waits for on a server that just went down.
        if (self.state == _REPLY and (seq == self.seq or seq < 0)) or (self.state == _ROOM and seq < 0):
            self.err_kind = kind
            self.err_text = text
            self.state = _FAILED
            self._resume()

    def wake_for_room(self):
        if self.state == _ROOM:
            self.room = True
            self._resume()
            return True
        return False


def _down(p):
    # A server stopped for good (a config error) does not run: like one never started.
    return errors.ServerDown if p.off is None else errors.NoSuchServer


def _off(p):
    return "" if p.off is None else " (%s)" % p.off
