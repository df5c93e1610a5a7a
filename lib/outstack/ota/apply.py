# What the OTA server does with a received package, and its status: loaded when a push
# ends or STATUS is asked, and let go after (service._free), so a board between pushes
# holds none of verify, rsa, package or install.
import os
from outstack import crashlog

STATE = "/.outstack/ota/state.json"  # {"seq": last accepted, "versions": {module: version}}


def _state():
    return crashlog.load_sealed(STATE)[0] or {"seq": 0, "versions": {}}


async def install(srv, path):
    """Verify the received package and install it; one line for the host either way. One
    install at a time on a board: the OTA (UART1, TCP) and fleet (MQTT) servers both come
    here, and a second would stage over the first's state while the first waits."""
    from outstack.ota.verify import OtaRejected

    owner = None
    try:
        system = srv.right("ota")
        if system.installing is not None:
            raise OtaRejected("busy", "%s is installing an update now: send this one again "
                              "when it has ended" % system.installing)
        owner = system
        owner.installing = srv.name
        return await _install(srv, path)
    except OtaRejected as e:
        return "refused (%s): %s" % (e.code, e)
    except Exception as e:  # a full flash, a bad config: say so, change nothing
        return "refused: %s: %s" % (type(e).__name__, e)
    finally:
        if owner is not None:
            owner.installing = None
        try:
            os.remove(path)
        except OSError:
            pass


async def _install(srv, path):
    import outstack
    from outstack import hal
    from outstack.ota import verify, install
    from outstack.ota.package import Package

    state = _state()
    if srv.keys is None:  # a rotated key list on flash wins over the firmware's config
        srv.keys = verify.load_keys(state.get("keys") or srv.config.get("keys"))
    policy = verify.Policy(srv.keys, hal.board.NAME, _floor(srv, state), outstack.__version__,
                           allow=tuple(srv.config.get("modules", ("app.*",))),
                           versions=state["versions"])
    with open(path, "rb") as f:
        pkg = Package(f, size=os.stat(path)[6])
        m = await pkg.verify_async(policy)
        if m["type"] == "keys":
            return _new_keys(srv, m, state)
        if m["type"] == "rollback":
            return await _rollback(srv, m, state)
        mods = list(pkg.modules())
        _admit_ram(mods)

        def staged():  # every module arrived whole: never take this update again
            state["seq"] = m["seq"]
            crashlog.save_sealed(STATE, state)
            anchor(srv, state["seq"])

        said = await install.install(srv.right("ota"), m["seq"], [(x.rel, x) for x in mods],
                                     srv.config.get("health_ms", install.HEALTH_MS),
                                     staged=staged)
    if said.startswith("installed"):
        was = state.setdefault("was", {})  # what a rollback puts back (heartbeats say it)
        for x in mods:
            was[x.name] = state["versions"].get(x.name)
            state["versions"][x.name] = x.version
        crashlog.save_sealed(STATE, state)
    return said


async def _rollback(srv, m, state):
    from outstack.ota import install

    def staged():
        state["seq"] = m["seq"]
        crashlog.save_sealed(STATE, state)
        anchor(srv, state["seq"])

    said = await install.rollback(srv.right("ota"), m["seq"], m["module"], staged)
    if said.startswith("installed"):
        v = state.get("was", {}).pop(m["module"], None)  # back to what it was before
        if v is None:
            state["versions"].pop(m["module"], None)
        else:
            state["versions"][m["module"]] = v
        crashlog.save_sealed(STATE, state)
    return said.replace("installed update", "rolled %s back as update" % m["module"], 1)


def _new_keys(srv, m, state):
    from outstack.ota import verify

    srv.keys = verify.accept_keys(m)
    state["seq"] = m["seq"]
    state["keys"] = m["keys"]
    crashlog.save_sealed(STATE, state)
    anchor(srv, m["seq"])
    return "accepted %d new trusted key(s)" % len(srv.keys)


def anchor(srv, seq=None):
    """The OTA trust anchor where the board's MPU guards an area for it (board.MPU_OTA): the
    accepted sequence and the trusted keys' ids, written only here through the commit path's
    window, kept over resets (not power cuts). Read: (seq, ids) or None; with seq: written."""
    try:
        g = srv.right("ota").guards
    except Exception:  # no "ota" right, or no System: no anchor
        return None
    if g is None:
        return None
    if seq is not None:
        g.keep(seq.to_bytes(4, "little") + b"".join(k[0] for k in srv.keys or ()))
        return None
    raw = g.kept()
    if len(raw) < 4:
        return None
    return int.from_bytes(raw[:4], "little"), [raw[i : i + 8] for i in range(4, len(raw), 8)]


def _floor(srv, state):
    # The lowest sequence to accept: the state file's, or the anchor's if wild code (or a
    # flash writer) turned the file back; a trusted key the anchor does not know is refused.
    a = anchor(srv)
    if a is None:
        return state["seq"]
    from outstack.ota.verify import OtaRejected

    from binascii import hexlify

    for k in srv.keys or ():
        if a[1] and k[0] not in a[1]:
            raise OtaRejected("keys", "trusted key %s is not in the MPU-guarded anchor: the "
                              "keys changed outside the OTA commit path (a power cycle "
                              "clears the anchor)" % hexlify(k[0]).decode())
    return max(state["seq"], a[0])


def status(srv):
    from outstack.ota import slots

    state = _state()
    seq, trial, prev = slots.read()
    rx = srv.rx
    return {"busy": rx.busy, "received": rx.received, "last": rx.last,
            "running": seq, "state": trial, "previous": prev, "accepted": state["seq"],
            "versions": state["versions"], "rolled_back": slots.last_note()}


def _admit_ram(mods):
    # Loading a module needs RAM: about its size for .mpy, a few times it to compile a .py.
    import gc
    from outstack.ota.verify import OtaRejected

    gc.collect()
    free = gc.mem_free()
    for x in mods:
        need = x.size * (3 if x.path.endswith(".py") else 1)
        if need > free:
            raise OtaRejected("ram", "module %r needs about %d bytes of RAM to load; %d are free"
                              % (x.name, need, free))
