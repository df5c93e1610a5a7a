# Install an update without a reboot: stage it beside the running version, flip the pointer
# to "trial", restart only the servers whose modules changed (and their dependents, in
# dependency order) on the new code, health-check them, then confirm; or put the old
# version back, restart them on it, and say why. Other servers keep serving throughout.
import asyncio
import os
import sys
from outstack.ota import slots
from outstack import errors

_NAME_MAX = 64  # characters in one part of a module name (LittleFS names stop at 255)
HEALTH_MS = 3000  # a restarted server must not crash for this long
ANSWER_MS = 2000  # and must answer a call within this


def module_name(rel):
    # "app/sensor.mpy" -> "app.sensor"
    return rel.rsplit(".", 1)[0].replace("/", ".")


def _servers_of(system, mods):
    out = []
    for name, entry in system.table.items():
        f = entry.get("factory")
        if isinstance(f, str) and f.partition(":")[0] in mods:
            out.append(name)
    return out


def _swap(mods, seq):
    def swap():
        for m in mods:  # the module and its packages: `app` must be found anew on the path
            parts = m.split(".")
            for i in range(len(parts)):
                sys.modules.pop(".".join(parts[: i + 1]), None)
        slots.use(seq)

    return swap


def write_slot(seq, base, modules):
    """Stage version `seq`: a copy of version `base` with `modules` written over it.
    modules: [(path in the area, e.g. "app/sensor.mpy", iterable of byte chunks)]."""
    top = slots.stage(seq, base)
    for rel, chunks in modules:
        if not rel.startswith(slots.AREA[1:] + "/") or ".." in rel:
            raise errors.OutstackError("module path %r is outside the module area" % rel)
        slots.makedirs(top + "/" + rel.rsplit("/", 1)[0])
        with open(top + "/" + rel, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        twin = rel[:-4] + ".py" if rel.endswith(".mpy") else rel[:-3] + ".mpy"
        try:
            os.remove(top + "/" + twin)  # a .py beside the new .mpy would win the import
        except OSError:
            pass
    return top


async def install(system, seq, modules, health_ms=HEALTH_MS, answer_ms=ANSWER_MS, staged=None):
    """Returns what happened, as one line for the host. `staged()` runs once every module
    is on flash with its hash checked, before the switch: the point of no replay."""
    cur, _, prev = slots.read()
    if seq <= cur:
        raise errors.OutstackError("update %d is not newer than the running %d" % (seq, cur))
    try:
        write_slot(seq, cur, modules)
    except Exception:
        slots.remove(seq)  # a module failed its hash or the flash filled: nothing changed
        raise
    if staged:
        staged()
    mods = [module_name(rel) for rel, _ in modules]
    names = _servers_of(system, mods)
    slots.write(seq, "trial", cur, prev)
    try:  # any failure to load or start the new code (ImportError, MemoryError, init) rolls back
        hit = await system.top.replace(names, _swap(mods, seq))
        why = await health(system, hit, health_ms, answer_ms)
    except Exception as e:
        hit, why = (), "the new code failed to load or start: %s: %s" % (type(e).__name__, e)
    if why is None:
        slots.write(seq, "good", cur)
        slots.prune((seq, cur))
        slots.note(None)
        return "installed update %d: %s restarted, healthy" % (seq, ", ".join(c.spec.name for c in hit) or "no server")
    import gc

    gc.collect()  # what the failed code held goes before the old code loads again
    await system.top.replace(names, _swap(mods, cur))
    slots.write(cur, "good", prev)
    slots.remove(seq)
    slots.note("rolled back update %d: %s" % (seq, why))
    return "rolled back update %d: %s" % (seq, why)


async def health(system, hit, health_ms, answer_ms):
    """None if every restarted server runs, answers and stays up; else why not."""
    start = {c.spec.name: c.proc.restarts for c in hit if c.proc}
    for c in hit:
        if c.proc is None:
            continue
        why = await _answers(system, c.spec.name, answer_ms)
        if why:
            return why
    await asyncio.sleep_ms(health_ms)
    for c in hit:
        p = c.proc
        if p is not None and (not p.alive or p.restarts != start[c.spec.name]):
            return "%r crashed within %d ms of starting" % (c.spec.name, health_ms)
    return None


async def _answers(system, name, answer_ms):
    client = system.kernel.client(name, "ota")
    try:
        await client.call("ping", None, answer_ms)
    except errors.BadMessage:
        pass  # it answered: it just has no "ping"
    except errors.OutstackError as e:
        died = client.dest.last_error
        if died is not None:
            return "%r crashed after the update: %s: %s" % (name, type(died).__name__, died)
        return "%r does not answer after the update: %s" % (name, e)
    return None


async def rollback(system, seq, name, staged=None):
    """Put the previous version of module `name` back, as update `seq` (health-checked too)."""
    cur, _, prev = slots.read()
    if cur == 0:
        raise errors.OutstackError("%r runs as deployed: there is no previous version" % name)
    if not all(_plain(p) for p in name.split(".")):
        raise errors.OutstackError("module name %r: parts must be Python names of at most %d "
                                   "characters" % (name[:80], _NAME_MAX))
    rel = name.replace(".", "/")
    for ext in (".mpy", ".py"):
        src = slots.root(prev) + "/" + rel + ext
        try:
            os.stat(src)
            break
        except OSError:
            pass
    else:
        raise errors.OutstackError("no previous version of %r to go back to" % name)
    return await install(system, seq, [(rel + ext, _chunks(src))], staged=staged)


def _plain(part):
    return 0 < len(part) <= _NAME_MAX and not part[0].isdigit() and \
        all(c.isalpha() or c.isdigit() or c == "_" for c in part)


def _chunks(path):
    buf = bytearray(512)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return
            yield memoryview(buf)[:n]

