"""The `outstack` command line: a table of command name to (handler, argument setup)."""

import argparse
import sys

from . import __version__
from .errors import CliError


def _sim(args):
    from .commands.sim import run

    return run(args)


def _image(args):
    from .commands.image import run

    return run(args)


def _deploy(args):
    from .commands.deploy import run

    return run(args)


def _crashlog(args):
    from .commands.crashlog import run

    return run(args)


def _ota(args):
    from .commands.ota import run

    return run(args)


def _console(args):
    from .commands.console import run

    return run(args)


def _top(args):
    from .commands.console import top

    return top(args)


def _replay(args):
    from .commands.replay import run

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


def _console_args(p):
    p.add_argument("--port", required=True,
                   help="USB REPL or UART1 serial port, or HOST:PORT for Wi-Fi (TCP)")
    p.add_argument("--json", action="store_true", help="print the board's answer as JSON")
    p.add_argument("--key", metavar="PATH",
                   help="private key that signs commands which change the board (default: "
                        "$OUTSTACK_KEY); on UART1 and TCP the board refuses them unsigned")
    _via(p)
    p.add_argument("words", nargs="*", metavar="COMMAND",
                   help="a command to run (servers, log NAME, trace NAME on, ...); "
                        "none: an interactive prompt")


def _top_args(p):
    p.add_argument("--port", required=True,
                   help="USB REPL or UART1 serial port, or HOST:PORT for Wi-Fi (TCP)")
    p.add_argument("--interval", type=_positive(float), default=1.0,
                   help="seconds between refreshes (default 1)")
    p.add_argument("--count", type=_positive(int), help="refresh this many times, then exit")
    _via(p)


def _replay_args(p):
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="read the crash records from this board's console")
    src.add_argument("--record", help="a crash record saved with --save (JSON)")
    p.add_argument("--server", help="which recorded server (default: the only one)")
    p.add_argument("--save", help="also write the record to this file")
    p.add_argument("--firmware", help="firmware folder to replay against (default firmware/)")


def _ota_args(p):
    from .commands.ota import add_arguments

    add_arguments(p)


def _crashlog_args(p):
    p.add_argument("--port", required=True, help="serial port of the board (or a virtual board pty)")
    p.add_argument("--clear", action="store_true",
                   help="then remove the record (and recorded servers' ones), lift the "
                        "quarantine and end the boot-loop streak")
    p.add_argument("--json", action="store_true", help="print the raw record as JSON")


def _sim_args(p):
    p.add_argument("image", nargs="?", default=None,
                   help="flash image file (default build/flash-BOARD.img)")
    p.add_argument("--board", default="unix", help="board to play (default unix)")
    p.add_argument("--fresh", action="store_true",
                   help="build a fresh image from firmware/ and lib/ first")
    p.add_argument("--config", help="device config file to put on the image as /config.json")
    p.add_argument("--uart-baud", type=int, default=115200, help="UART1 line rate (default 115200)")
    p.add_argument("--usb-baud", type=int, default=0,
                   help="throttle the USB REPL to this rate too (default: unthrottled)")
    p.add_argument("--wifi", default="outstack:outstack-key", help="SSID:KEY of the access point")
    p.add_argument("--no-wifi", action="store_true", help="no access point in range")
    p.add_argument("--link", help="also make PATH a symlink to the USB REPL pty")
    p.add_argument("--no-attach", action="store_true",
                   help="do not attach this terminal; run until interrupted")


def _image_args(p):
    p.add_argument("action", choices=["build", "check", "ls", "cat"])
    p.add_argument("image")
    p.add_argument("path", nargs="?", help="file on the board (for cat)")
    p.add_argument("--board", default="unix")
    p.add_argument("--config", help="device config file to put on the image as /config.json")


def _deploy_args(p):
    p.add_argument("--port", required=True, help="serial port of the board (or a virtual board pty)")
    p.add_argument("--board", default="rp2040", help="board kind (default rp2040)")
    p.add_argument("--source", action="store_true", help="copy .py sources instead of .mpy")
    p.add_argument("--config", help="device config file to install as /config.json")
    p.add_argument("--no-mip", action="store_true", help="skip micropython-lib packages")


COMMANDS = {
    "sim": (_sim, _sim_args, "boot a virtual board and attach to its REPL"),
    "image": (_image, _image_args, "build, check or read a virtual board flash image"),
    "deploy": (_deploy, _deploy_args, "compile and copy the firmware to a board"),
    "crashlog": (_crashlog, _crashlog_args, "read (and clear) a board's crash record"),
    "console": (_console, _console_args, "inspect a running board: servers, logs, traces, faults"),
    "top": (_top, _top_args, "a live table of a running board's servers"),
    "replay": (_replay, _replay_args, "reproduce a recorded server crash on a virtual board"),
    "ota": (_ota, _ota_args, "signed per-module updates: keygen, pack, sign, key-rotate, show"),
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


def main(argv=None):
    args = parser().parse_args(argv)
    if not getattr(args, "handler", None):
        parser().print_help()
        return 2
    try:
        return args.handler(args) or 0
    except CliError as e:
        print(f"outstack: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
