# Helpers shared by device tests (copied to the board's /lib beside _runner.py).
from outstack.server import Proc
from outstack.spec import Spec


def serve(kernel, name, cls, **spec):
    """A started server of class `cls` registered as `name`, without a supervisor."""
    p = Proc(kernel, Spec(name, cls, **spec))
    s = cls()
    p.attach(s)
    s.init({}, None)
    return p


def need(present, what):
    """Skip the calling test, saying why, on a board that lacks `what` (a port feature)."""
    if not present:
        from _runner import Skip

        raise Skip("this board has no %s" % what)


def has_module(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


async def until(cond, ms=20000):
    """Wait until cond() holds, polling; a generous deadline, so a slow board is no failure."""
    import asyncio
    import time

    t0 = time.ticks_ms()
    while not cond():
        assert time.ticks_diff(time.ticks_ms(), t0) < ms, "never happened"
        await asyncio.sleep_ms(1)
