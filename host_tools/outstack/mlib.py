"""micropython-lib packages for the virtual board's flash image, taken from the mip index
built from the local micropython-lib snapshot (mipindex.py): the same files `mpremote mip
install` puts on a board, as sources (the image builder compiles them for the board). Without
a snapshot the image is built without them and the framework's own fallbacks run
(outstack.minilog for logging); the builder says so once, with how to get one."""

import sys

from . import mipindex
from .errors import CliError

_warned = set()


def index(quiet: bool = False):
    """The built index's folder, or None (said once) when there is no snapshot to build it."""
    try:
        return mipindex.build(log=None if quiet else _say)
    except CliError as e:
        if not quiet and "index" not in _warned:
            _warned.add("index")
            print(f"outstack: micropython-lib packages are not put on the image ({e}); the "
                  f"framework's fallbacks stand in (outstack.minilog for logging)",
                  file=sys.stderr)
        return None


def _say(text: str) -> None:
    print(f"[outstack] {text}", file=sys.stderr)


def release(name: str) -> str:
    """Which version of `name` the snapshot's index holds ("logging 0.6.2"), or "none"."""
    root = index(quiet=True)
    have = mipindex.packages(root) if root else {}
    pkg = name.partition("@")[0]
    return f"{pkg} {have[pkg]} ({root.name.rsplit('-', 1)[0]})" if pkg in have else "none"


def files(names: list[str], quiet: bool = False) -> list[tuple[str, str]]:
    """(host file, board path) pairs for the packages `names` (NAME or NAME@VERSION) and
    their dependencies; [] when there is no snapshot. A name micropython-lib does not have
    raises CliError."""
    if not names:
        return []
    root = index(quiet)
    return mipindex.files(root, names) if root else []
