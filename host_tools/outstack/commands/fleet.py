"""`outstack fleet ACTION`: boards on an MQTT broker (docs/FLEET.md). A table of action to
(handler, argument setup, help), like `outstack ota`.

    broker [--port P]           mosquitto on the loopback, until Ctrl-C
    sim N [--broker H:P]        N virtual boards with the fleet server on, until Ctrl-C
    ls [--broker H:P]           version x count, online/lost, health
    rollout PKG --canary N --steps 5,25,50,100 --soak S --halt-on RULE
                                a staged, health-gated rollout (state in build/fleet.db)
    status | halt | resume | rollback [ID]
    serve [--listen H:P]        the dashboard in a browser (docs/FLEET.md)
"""

import signal
import tempfile
import threading
import time
from pathlib import Path

from ..errors import CliError
from ..project import add_argument as add_project

DEFAULT_BROKER = "127.0.0.1:1883"


def broker(args):
    from ..fleet.broker import Broker

    b = Broker(args.port, Path(args.dir) if args.dir else None).start()
    print(f"mosquitto on 127.0.0.1:{b.port} (log {b.log}); Ctrl-C stops it", flush=True)
    try:
        _until_stopped(args.seconds)
    finally:
        b.stop()
    return 0


def sim(args):
    from ..fleet import sim as S
    from ..project import find

    if args.count < 1:
        raise CliError(f"sim needs at least 1 board, not {args.count}")
    host, port = _address(args.broker)
    project = find(args.project)
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="outstack-fleet-"))
    cfg = S.fleet_config(port, project.trusted_keys(), host, args.period_ms)
    tpl = S.template(project.firmware, folder, cfg)
    swarm = S.Swarm(args.count, folder, tpl).start(fresh=not args.keep)
    print(f"{args.count} virtual boards on {host}:{port} (images in {folder}); Ctrl-C stops "
          f"them", flush=True)
    try:
        _until_stopped(args.seconds)
    finally:
        swarm.stop()
    return 0


def ls(args):
    from ..fleet.ls import matrix
    from ..fleet.view import Fleet

    host, port = _address(args.broker)
    with Fleet(port, host) as fleet:
        time.sleep(args.wait)  # the retained messages arrive right after subscribing
        with fleet.cond:
            lines = matrix(fleet)
    print("\n".join(lines))
    return 0


def rollout(args):
    from ..fleet import rollout as RO

    steps = RO.parse_steps(args.steps)
    with _session(args) as (store, fleet):
        time.sleep(args.wait)  # the retained births and heartbeats arrive
        rid = RO.start(store, fleet, args.package, args.canary, steps, args.soak, args.halt_on)
        print(f"rollout {rid}: {args.package} to {len(store.targets(rid))} boards", flush=True)
        return _drive(store, fleet, rid, args)


def resume(args):
    from ..fleet import actions

    with _session(args) as (store, fleet):
        r = actions.resume(store, args.id, actions.cli_user())
        time.sleep(args.wait)
        return _drive(store, fleet, r["id"], args)


def halt(args):
    from ..fleet import actions
    from ..fleet.store import Store

    store = Store(_db(args))
    r = actions.halt(store, args.id, actions.cli_user())
    print(f"rollout {r['id']}: halted (its process stops at its next check)")
    return 0


def rollback(args):
    from ..fleet import actions
    from ..fleet.rollout import Engine

    with _session(args) as (store, fleet):
        r = actions.rollback(store, args.id, actions.cli_user())
        time.sleep(args.wait)
        Engine(store, fleet, r["id"], _key(args)).rollback()
    return 0


def status(args):
    from collections import Counter

    from ..fleet import actions
    from ..fleet.store import Store

    store = Store(_db(args))
    rows = [actions.find(store, args.id)] if args.id else store.all()
    if not rows:
        print("no rollouts yet")
    for r in rows:
        counts = Counter(t["state"] for t in store.targets(r["id"]))
        print(f"rollout {r['id']}: {Path(r['package']).name} (update {r['seq']}) {r['state']} at "
              f"step {r['step']}" + (f": {r['reason']}" if r["reason"] else ""))
        print("  boards: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
        for t in store.targets(r["id"], *_WHY_STATES):  # what went wrong, board by board
            print(f"  {t['board']} {t['state']}: {t['detail'] or 'no detail'}")
    return 0


_WHY_STATES = ("failed", "refused", "crashed", "lost", "rollback-failed")


def serve(args):
    import asyncio

    from ..fleet import dash as D

    host, port = _address(args.listen, "--listen")
    bhost, bport = _address(args.broker)
    token = _token(args)
    fleet = D.Watched(bport, bhost).connect()
    board = D.Dashboard(fleet, _db(args), token, _key(args))

    def ready(bound):
        print(f"dashboard on http://{host}:{bound}/?token={token} (fleet on {bhost}:{bport}, "
              f"state {board.db}); Ctrl-C stops it", flush=True)

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(D.serve(board, host, port, ready))
    except KeyboardInterrupt:
        pass
    finally:
        fleet.close()
    return 0


def _interrupt(*_):
    raise KeyboardInterrupt  # SIGTERM stops the dashboard as Ctrl-C does


def _token(args) -> str:
    import os
    import secrets
    import tomllib

    if args.token or os.environ.get("OUTSTACK_FLEET_TOKEN"):
        return args.token or os.environ["OUTSTACK_FLEET_TOKEN"]
    from ..project import FILE, find

    try:
        cfg = tomllib.loads((find(args.project).root / FILE).read_text())
    except (CliError, OSError, tomllib.TOMLDecodeError):
        cfg = {}
    given = cfg.get("fleet", {}).get("token")
    return given if isinstance(given, str) and given else secrets.token_urlsafe(18)


def _drive(store, fleet, rid, args) -> int:
    from ..fleet.rollout import Engine

    state = Engine(store, fleet, rid, _key(args), say=lambda t: print(t, flush=True)).run(
        rollback=not args.no_rollback)
    r = store.rollout(rid)
    if state != "done":
        shown = "halted and rolled back" if state == "rolled-back" else state
        raise CliError(f"rollout {rid} {shown}: {r['reason']}")
    return 0


class _session:
    def __init__(self, args):
        self.args = args

    def __enter__(self):
        from ..fleet.store import Store
        from ..fleet.view import Fleet

        host, port = _address(self.args.broker)
        self.store = Store(_db(self.args))
        self.fleet = Fleet(port, host).connect()
        return self.store, self.fleet

    def __exit__(self, *exc):
        self.fleet.close()
        self.store.close()


def _db(args) -> Path:
    if args.db:
        return Path(args.db)
    from ..project import find

    try:
        return find(args.project).build / "fleet.db"
    except CliError:
        return Path("fleet.db")


def _key(args):
    if args.key:
        return args.key
    from ..project import find

    try:
        key = find(args.project).key
    except CliError:
        return None
    return str(key) if key else None


def _address(text: str, what: str = "--broker") -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536 or \
            (what == "--broker" and int(port) == 0):
        raise CliError(f"{what} must be HOST:PORT, not {text!r}")
    return host or "127.0.0.1", int(port)


def _until_stopped(seconds) -> None:
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    try:
        done.wait(seconds)
    except KeyboardInterrupt:
        pass


# ----- argument setup -----------------------------------------------------------------------
def _broker_opt(p):
    p.add_argument("--broker", default=DEFAULT_BROKER,
                   help=f"the MQTT broker as HOST:PORT (default {DEFAULT_BROKER})")


def _broker_args(p):
    p.add_argument("--port", type=int, default=1883, help="port on 127.0.0.1 (default 1883; "
                                                          "0: a free one)")
    p.add_argument("--dir", help="folder for its config and log (default: a temporary one)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: at Ctrl-C)")


def _sim_args(p):
    p.add_argument("count", type=int, metavar="N", help="how many virtual boards")
    _broker_opt(p)
    p.add_argument("--period-ms", type=int, default=5000, help="heartbeat period (default 5000)")
    p.add_argument("--dir", help="folder for the boards' flash images (default: a temporary "
                                 "one)")
    p.add_argument("--keep", action="store_true",
                   help="boot the images already in --dir (the boards keep what they installed)")
    p.add_argument("--seconds", type=float, help="stop after this long (default: at Ctrl-C)")
    add_project(p)


def _ls_args(p):
    _broker_opt(p)
    p.add_argument("--wait", type=float, default=1.0,
                   help="seconds to collect the retained messages (default 1)")


def _state_args(p, broker=True, key=True, wait=True):
    p.add_argument("--db", help="the rollout state file (default: the project's build/fleet.db)")
    if broker:
        _broker_opt(p)
    if broker and wait:
        p.add_argument("--wait", type=float, default=1.0,
                       help="seconds to collect the retained messages first (default 1)")
    if key:
        p.add_argument("--key", help="private key that signs rollbacks (default: the "
                                     "project's ota.key)")
    add_project(p)


def _rollout_args(p):
    p.add_argument("package", help="a signed update package (outstack ota pack)")
    p.add_argument("--canary", type=int, default=1, help="boards in the first step (default 1)")
    p.add_argument("--steps", default="5,25,50,100",
                   help="then these percentages of the fleet (default 5,25,50,100)")
    p.add_argument("--soak", type=float, default=60.0,
                   help="seconds each step must stay healthy (default 60)")
    p.add_argument("--halt-on", default="failed > 0 or unhealthy > 0",
                   help="halt rule, e.g. 'failed > 2%% or crashed > 0' (docs/FLEET.md)")
    p.add_argument("--no-rollback", action="store_true", help="on a halt, roll nothing back")
    _state_args(p)


def _id_args(p, broker=True, key=True):
    p.add_argument("id", nargs="?", type=int, help="which rollout (default: the latest)")
    _state_args(p, broker, key)


def _resume_args(p):
    _id_args(p)
    p.add_argument("--no-rollback", action="store_true", help="on a halt, roll nothing back")


def _serve_args(p):
    p.add_argument("--listen", default="127.0.0.1:8080",
                   help="address of the page as HOST:PORT (default 127.0.0.1:8080; port 0: a "
                        "free one)")
    p.add_argument("--token", help="the token the page asks for (default: $OUTSTACK_FLEET_TOKEN, "
                                   "else [fleet] token in outstack.toml, else a new one, printed)")
    _state_args(p, wait=False)


ACTIONS = {
    "broker": (broker, _broker_args, "a local MQTT broker (mosquitto) on the loopback"),
    "sim": (sim, _sim_args, "N virtual boards with the fleet server on"),
    "ls": (ls, _ls_args, "the fleet: release x count, online/lost, health"),
    "rollout": (rollout, _rollout_args, "a staged, health-gated rollout of a signed release"),
    "status": (status, lambda p: _id_args(p, False, False), "the rollouts and their boards"),
    "halt": (halt, lambda p: _id_args(p, False, False), "stop a running rollout"),
    "resume": (resume, _resume_args, "go on with a halted or interrupted rollout"),
    "rollback": (rollback, _id_args, "roll back the boards that took a halted rollout"),
    "serve": (serve, _serve_args, "the fleet dashboard in a browser (halt, resume, roll back)"),
}


def add_arguments(p):
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (handler, setup, helptext) in ACTIONS.items():
        sp = subs.add_parser(name, help=helptext, description=helptext)
        setup(sp)
        sp.set_defaults(fleet_handler=handler)


def run(args):
    return args.fleet_handler(args)
