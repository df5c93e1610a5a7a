# The boot of a System (System.boot): read the device config, check for a boot loop, build the
# top supervisor, arm the watchdog guard. Used once per boot, then let go (outstack.unload):
# a running board does not keep this code in RAM.
import asyncio
from outstack import config as _config
from outstack.supervisor import Supervisor


def boot(system):
    cfg, err = _config.load(system.config_path, system.defaults)
    if err:
        system._say(err)
    said: list = []
    cfg = _config.board(cfg, said)
    for text in said:
        system._say("%s: %s" % (system.config_path, text))
    _check_boot(system, cfg)
    try:
        system.top = _tree(system, cfg)
    except Exception as e:  # a config the firmware cannot run: say so, run the defaults
        system._say("%s: %s; running the built-in defaults" % (system.config_path, e))
        cfg = system.defaults or {}
        system.top = _tree(system, cfg)
    system.config = cfg
    _fair(system, cfg)
    _arm_mpu(system)
    system.top.on_escalate = system.escalate
    system.top.start(system.kernel)
    _name_servers(system)
    system.kernel.start()
    _arm_guard(system, cfg)
    _keep_errors(system)
    if any(p.spec.mem_limit for p in system.kernel.names.values()):
        asyncio.create_task(system._audit(cfg.get("audit_ms", 1000)))


def _arm_mpu(system):
    # Cortex-M boards that name their guards (board.MPU_STACK, MPU_OTA): the MPU is on before
    # any server starts; its right goes to specs granted "mpu" (the OTA commit path).
    from outstack import hal

    if getattr(hal.board, "MPU_OTA", None) is None:
        return
    from outstack.errors import NotPermitted
    from outstack.hal import mpu

    try:
        system.guards = mpu.arm()
    except NotPermitted:
        return  # armed by an earlier System of this boot, which holds the right
    except ValueError as e:  # ConfigError too: a board file the MPU cannot take
        system._say("MPU guards not armed (%s): the software policy applies" % e)
        return
    if system.guards is not None:
        system.kernel.rights["mpu"] = system.guards


def _name_servers(system):
    # Boards that keep the running server's number over a reset (board.NOINIT): name them.
    from outstack import hal

    if getattr(hal.board, "NOINIT", None) is not None:
        from outstack.hal import noinit

        noinit.name_servers(system.kernel)


def _fair(system, cfg):
    try:
        system.kernel.fair(**dict(system.fairness, **cfg.get("fairness", {})))
    except (TypeError, ValueError) as e:  # a bad key or value: say so, keep the defaults
        system._say("%s: fairness: %s; running the kernel's defaults" % (system.config_path, e))


def _check_boot(system, cfg):
    from outstack import safemode

    try:
        system.check = safemode.BootCheck(**cfg.get("safe_mode", {})).run()
    except Exception as e:  # the black box must never stop a boot
        system._say("boot check failed (%r): booting normally" % e)
        system.check = safemode.BootCheck()
        return
    for w in system.check.warnings:
        system._say(w)
    rec = system.check.record
    if rec and rec.get("cause"):
        system.last_reset = rec.get("reason") or "%s in %r" % (rec["kind"], rec.get("server"))
    if system.check.safe:
        system._say("SAFE MODE after %d crash-resets: essential servers only; quarantined: %s"
                    % (system.check.state["streak"], ", ".join(system.check.state["quarantine"])))


def _tree(system, cfg):
    said: list = []
    specs = _config.select(_resolve(system.table), cfg, said)
    check = system.check
    st = check.state if check else {}
    safe = check.safe if check else False
    out = [s for s in specs if s.name not in st.get("quarantine", ()) and (s.essential or not safe)]
    top = Supervisor(_config.runnable(out, said), name="top", **_config.supervisor(cfg, said))
    for text in said:  # settings refused one by one: the firmware's values run instead
        system._say("%s: %s" % (system.config_path, text))
    return top


def _keep_errors(system):
    # What was wrong with the config, for `outstack crashlog` after a reset too.
    from outstack import crashlog, safemode

    try:
        crashlog.note_config(system.errors, safemode.boots)
    except Exception as e:  # a full flash must not stop the boot
        print("outstack: could not keep the config errors: %r" % e)


def _arm_guard(system, cfg):
    ms = cfg.get("watchdog_ms")
    if not ms:
        return
    from outstack.guard import Guard

    try:
        system.guard = Guard(system.kernel, ms, cfg.get("runaway_ms", 0), system._runaway)
    except ValueError as e:  # above the board's limit: said, never a boot that stops
        system._say("%s: %s; the watchdog stays off" % (system.config_path, e))
        return
    asyncio.create_task(system.guard.run())
    window = system.check.window_ms if system.check else 0
    if window:
        asyncio.create_task(system._healthy_after(window))


def _resolve(table):
    # Factories may be named "module:Class" so only the servers that run are imported.
    from outstack.system import _Lazy

    out = {}
    for name, entry in table.items():
        entry = dict(entry)
        f = entry["factory"]
        if isinstance(f, str):
            mod, _, cls = f.partition(":")
            entry["factory"] = _Lazy(mod, cls)
        out[name] = entry
    return out
