"""`outstack mip-index [serve|build|ls] [--port N]`: micropython-lib's packages as a mip index
on this host, built from the local snapshot with micropython-lib's own tools/build.py, for
`mpremote mip install --index URL NAME` and `outstack deploy --index URL`."""

import signal
import sys
import threading

from .. import mipindex


def run(args):
    root = mipindex.build(log=print)
    if args.action == "build":
        print(root)
    elif args.action == "ls":
        for name, version in sorted(mipindex.packages(root).items()):
            print(f"{name} {version}")
    else:
        _serve(root, args.port)


def _serve(root, port: int) -> None:
    with mipindex.serve(root, port) as served:
        count = len(mipindex.packages(root))
        print(f"serving the mip index of {root.name.rsplit('-', 1)[0]} ({count} packages) at "
              f"{served.url}")
        print(f"  mpremote mip install --index {served.url} logging")
        print(f"  outstack deploy --index {served.url}")
        print("Ctrl-C stops it", flush=True)
        stop = threading.Event()
        # Ctrl-C and SIGTERM stop it, also where SIGINT came in ignored (a shell's background
        # job): Python installs no KeyboardInterrupt handler then.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
        print("stopped", file=sys.stderr)
