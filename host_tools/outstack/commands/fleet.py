"""`outstack fleet ACTION`: boards on an MQTT broker (docs/FLEET.md). A table of action to
(handler, argument setup, help), like `outstack ota`.

    broker [--port P]           mosquitto on the loopback, until Ctrl-C
    sim N [--broker H:P]        N virtual boards with the fleet server on, until Ctrl-C
    ls [--broker H:P]           version x count, online/lost, health
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


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"--broker must be HOST:PORT, not {text!r}")
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


ACTIONS = {
    "broker": (broker, _broker_args, "a local MQTT broker (mosquitto) on the loopback"),
    "sim": (sim, _sim_args, "N virtual boards with the fleet server on"),
    "ls": (ls, _ls_args, "the fleet: release x count, online/lost, health"),
}


def add_arguments(p):
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (handler, setup, helptext) in ACTIONS.items():
        sp = subs.add_parser(name, help=helptext, description=helptext)
        setup(sp)
        sp.set_defaults(fleet_handler=handler)


def run(args):
    return args.fleet_handler(args)
