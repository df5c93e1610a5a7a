# The console's commands that change the board (on a link they must be signed: see auth.py).
# Loaded for one command, then let go (see console.py).
import asyncio
from outstack.errors import OutstackError
from outstack.debug.view import proc, count


def level(console, name, level):
    from outstack import log

    proc(console, name)
    return {"server": name, "level": log.set_level(name, level)}


def trace(console, name, onoff=None):
    from outstack.debug.watch import watch

    proc(console, name)
    if onoff not in ("on", "off"):
        raise ValueError("trace %s: say on or off" % name)
    watch(console.kernel, name, trace=onoff == "on")
    return {"server": name, "trace": onoff == "on"}


def record(console, name, n=None):
    from outstack.debug.watch import watch

    proc(console, name)
    if n is None:
        raise ValueError("record %s: say how many messages to keep, or off" % name)
    size = 0 if n == "off" else count(n)
    watch(console.kernel, name, record=size)
    return {"server": name, "record": size}


def _carrier(console, name):
    # True if `name` may carry this very command (a server with a link: OTA, console): what
    # stops it must wait until the answer is out ("can't cancel self", a closed socket).
    p = console.kernel.names.get(name)
    return p is not None and getattr(p.server, "rx", None) is not None


async def _later(fn, *args):
    await asyncio.sleep_ms(200)  # the answer goes out first
    r = fn(*args)
    if r is not None and hasattr(r, "send"):
        await r


async def restart(console, name):
    p = proc(console, name)
    top = console.system.top
    if top.find(name) is None:
        raise OutstackError("%r is not run by a supervisor" % name)
    if _carrier(console, name):
        asyncio.create_task(_later(top.restart, name))
        return {"server": name, "state": "restarting after this answer",
                "restarts": p.restarts + 1}
    await top.restart(name)
    return {"server": name, "state": "running" if p.alive else "down", "restarts": p.restarts}


def fault(console, name, kind=None, amount="0"):
    from outstack.debug import fault

    proc(console, name)
    if kind is None:
        raise ValueError("fault %s: say which: %s" % (name, ", ".join(fault.KINDS)))
    n = count(amount, 0)
    if kind == "crash" and _carrier(console, name):
        asyncio.create_task(_later(fault.inject, console.system, name, kind, n))
        return {"server": name, "said": "%r crashes after this answer (injected); its "
                "supervisor decides what follows" % name}
    return {"server": name, "said": fault.inject(console.system, name, kind, n)}
