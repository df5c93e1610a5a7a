"""The `outstack` command line: a table of command name to (handler, argument setup)."""

import argparse
import sys

from . import __version__
from .errors import CliError
from .project import add_argument as add_project


def _sim(args):
    from .commands.sim import run

    return run(args)


def _new(args):
    from .commands.new import run

    return run(args)


def _dev(args):
    from .commands.dev import run

    return run(args)


def _image(args):
    from .commands.image import run

    return run(args)


def _deploy(args):
    from .commands.deploy import run

    return run(args)


def _firmware(args):
    from . import firmware
    from .project import find

    app = None if args.no_app else find(args.project).firmware
    def progress(line):  # on stderr: stdout has the result alone
        print(line, file=sys.stderr, flush=True)

    print(firmware.describe(firmware.build(args.board, app, log=progress)))
    return 0


def _firmware_args(p):
    p.add_argument("--board", default="mps2-an385",
                   help="a board with a MicroPython board definition in boards/ (default "
                        "mps2-an385, the Cortex-M3 that `outstack sim` plays under QEMU)")
    p.add_argument("--no-app", action="store_true",
                   help="freeze the framework alone (the app then runs from the board's flash)")
    add_project(p)


def _crashlog(args):
    from .commands.crashlog import run

    return run(args)


def _ota(args):
    from .commands.ota import run

    return run(args)


def _console(args):
    from .commands.console import run

    return run(args)


def _fleet(args):
    from .commands.fleet import run

    return run(args)


def _fleet_args(p):
    from .commands.fleet import add_arguments

    add_arguments(p)


def _top(args):
    from .commands.console import top

    return top(args)


def _replay(args):
    from .commands.replay import run

    return run(args)


def _mip_index(args):
    from .commands.mipindex import run

    return run(args)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value

    return parse


def _via(p):
    p.add_argument("--via", choices=["auto", "usb", "link"], default="auto",
                   help="how a serial port is reached: usb (the live prompt on the USB REPL), "
                        "link (frames on UART1); auto tries usb first, which costs a second "
                        "on UART1")


PORT_HELP = ("USB REPL or UART1 serial port, or HOST:PORT for Wi-Fi (TCP) (default: [connect] "
             "port of outstack.toml, else the project's running virtual board)")


def _console_args(p):
    p.add_argument("--port", help=PORT_HELP)
    add_project(p)
    p.add_argument("--json", action="store_true", help="print the board's answer as JSON")
    p.add_argument("--key", metavar="PATH",
                   help="private key that signs commands which change the board (default: "
                        "$OUTSTACK_KEY); on UART1 and TCP the board refuses them unsigned")
    _via(p)
    p.add_argument("words", nargs="*", metavar="COMMAND",
                   help="a command to run (servers, log NAME, trace NAME on, ...); "
                        "none: an interactive prompt")


def _top_args(p):
    p.add_argument("--port", help=PORT_HELP)
    add_project(p)
    p.add_argument("--interval", type=_positive(float), default=1.0,
                   help="seconds between refreshes (default 1)")
    p.add_argument("--count", type=_positive(int), help="refresh this many times, then exit")
    _via(p)


def _replay_args(p):
    src = p.add_mutually_exclusive_group()
    src.add_argument("--port", help="read the crash records from this board's console (default: "
                                    "the project's board, as for console)")
    src.add_argument("--record", help="a crash record saved with --save (JSON)")
    p.add_argument("--server", help="which recorded server (default: the only one)")
    p.add_argument("--save", help="also write the record to this file")
    p.add_argument("--firmware", help="firmware folder to replay against (default: the "
                                      "project's)")
    add_project(p)


def _ota_args(p):
    from .commands.ota import add_arguments

    add_arguments(p)


def _crashlog_args(p):
    p.add_argument("--port", help="serial port of the board's USB REPL (default: [connect] port "
                                  "of outstack.toml, else the project's running virtual board)")
    add_project(p)
    p.add_argument("--clear", action="store_true",
                   help="then remove the record (and recorded servers' ones), lift the "
                        "quarantine and end the boot-loop streak")
    p.add_argument("--json", action="store_true", help="print the raw record as JSON")


def _sim_args(p):
    p.add_argument("image", nargs="?", default=None,
                   help="flash image file (default: the project's build/flash-BOARD.img, built "
                        "if missing)")
    p.add_argument("--board", help="board to play (default: the project's, else unix)")
    p.add_argument("--fresh", action="store_true",
                   help="build a fresh image from the project's firmware and the framework")
    add_project(p)
    p.add_argument("--config", help="device config file to put on the image as /config.json")
    p.add_argument("--uart-baud", type=int, default=115200, help="UART1 line rate (default 115200)")
    p.add_argument("--usb-baud", type=int, default=0,
                   help="throttle the USB REPL to this rate too (default: unthrottled)")
    p.add_argument("--wifi", default="outstack:outstack-key", help="SSID:KEY of the access point")
    p.add_argument("--no-wifi", action="store_true", help="no access point in range")
    p.add_argument("--link", help="also make PATH a symlink to the USB REPL pty")
    p.add_argument("--no-attach", action="store_true",
                   help="do not attach this terminal; run until interrupted")
    p.add_argument("--detach", action="store_true",
                   help="run the board in the background and return once it is up")
    p.add_argument("--stop", action="store_true",
                   help="switch off this project's board started with --detach")


def _image_args(p):
    p.add_argument("action", choices=["build", "check", "ls", "cat"])
    p.add_argument("image", nargs="?", help="image file (default: the project's "
                                            "build/flash-BOARD.img)")
    p.add_argument("path", nargs="?", help="file on the board (for cat)")
    p.add_argument("--board", help="board geometry (default: the project's, else unix)")
    p.add_argument("--config", help="device config file to put on the image as /config.json")
    p.add_argument("--source", action="store_true", help="keep .py sources instead of .mpy")
    add_project(p)


def _deploy_args(p):
    p.add_argument("--port", help="serial port of the board's USB REPL (default: [connect] port "
                                  "of outstack.toml, else the project's running virtual board)")
    p.add_argument("--board", help="board kind (default: deploy_board of outstack.toml)")
    p.add_argument("--source", action="store_true", help="copy .py sources instead of .mpy")
    p.add_argument("--config", help="device config file to install as /config.json")
    p.add_argument("--no-mip", action="store_true", help="skip micropython-lib packages")
    p.add_argument("--index", metavar="URL",
                   help="mip package index to install firmware/requirements.txt from (default: "
                        "the public one; out of reach, the local micropython-lib snapshot's, "
                        "see `outstack mip-index`)")
    p.add_argument("--clean", action="store_true",
                   help="also remove data files that are not the project's (the crash log "
                        "and OTA state stay)")
    add_project(p)


def _tcp_port(text):
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (0-65535)")
    return int(text)


def _mip_index_args(p):
    p.add_argument("action", choices=["serve", "build", "ls"], nargs="?", default="serve",
                   help="serve (default): build if needed and serve on 127.0.0.1 until Ctrl-C; "
                        "build: build and print its folder; ls: its packages and versions")
    p.add_argument("--port", type=_tcp_port, default=0,
                   help="TCP port to serve on (default: a free one, printed)")


def _new_args(p):
    p.add_argument("dir", help="the new project's folder (must not exist, or be empty)")
    p.add_argument("--board", default="rp2040",
                   help="the board you will deploy to (default rp2040); the virtual board "
                        "plays unix")
    p.add_argument("--name", help="the project's name (default: the folder's)")


def _dev_args(p):
    from .commands.dev import add_arguments

    add_arguments(p)


COMMANDS = {
    "new": (_new, _new_args, "make a project of your own: firmware, keys, test, outstack.toml"),
    "sim": (_sim, _sim_args, "boot a virtual board and attach to its REPL"),
    "image": (_image, _image_args, "build, check or read a virtual board flash image"),
    "deploy": (_deploy, _deploy_args, "compile and copy the firmware to a board"),
    "firmware": (_firmware, _firmware_args,
                 "build MicroPython firmware with the framework and the project's app frozen in"),
    "crashlog": (_crashlog, _crashlog_args, "read (and clear) a board's crash record"),
    "console": (_console, _console_args, "inspect a running board: servers, logs, traces, faults"),
    "top": (_top, _top_args, "a live table of a running board's servers"),
    "replay": (_replay, _replay_args, "reproduce a recorded server crash on a virtual board"),
    "ota": (_ota, _ota_args, "signed per-module updates: keygen, pack, sign, key-rotate, show"),
    "mip-index": (_mip_index, _mip_index_args,
                  "a mip package index of the local micropython-lib snapshot, served on "
                  "127.0.0.1 for `mpremote mip install --index URL`"),
    "dev": (_dev, _dev_args, "watch the project's firmware; hot-swap each saved module, signed"),
    "fleet": (_fleet, _fleet_args, "boards on an MQTT broker: broker, sim N, ls"),
}


def parser():
    top = argparse.ArgumentParser(prog="outstack", description="Outstack Micro host tools")
    top.add_argument("--version", action="version", version=f"outstack {__version__}")
    subs = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (handler, setup, helptext) in COMMANDS.items():
        p = subs.add_parser(name, help=helptext, description=helptext)
        setup(p)
        p.set_defaults(handler=handler)
    return top


def _where(args) -> None:
    """Fill in --port (and the OTA link) from the project when the command was not told."""
    from . import connect
    from .project import find

    if args.command in ("console", "top") and not args.port and args.via == "link":
        args.port = connect.link(find(args.project), None, "unix")[0]  # UART1 (or HOST:PORT)
    elif args.command in ("console", "top", "crashlog") and not args.port:
        args.port = connect.usb(find(args.project), None)
    elif args.command == "replay" and not args.port and not args.record:
        args.port = connect.usb(find(args.project), None)
    elif (args.command == "ota" and getattr(args, "action", None) in ("push", "status", "rollback")
          and not args.port and not args.host and not getattr(args, "out", None)):
        spec, _ = connect.link(find(getattr(args, "project", None)), None, "unix")
        host, sep, port = spec.rpartition(":")
        if sep and port.isdigit() and not spec.startswith("/"):
            args.host = spec
        else:
            args.port = spec


def main(argv=None):
    args = parser().parse_args(argv)
    if not getattr(args, "handler", None):
        parser().print_help()
        return 2
    try:
        _where(args)
        return args.handler(args) or 0
    except CliError as e:
        print(f"outstack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
