"""Where things are: the repository tree and the MicroPython executables in this environment."""

import os
import shutil
import sys
from pathlib import Path

from .errors import CliError

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "boards"
ROM = BOARDS / "unix" / "rom"
LIB = ROOT / "lib"
FIRMWARE = ROOT / "firmware"
BUILD = ROOT / "build"


def tool(name: str) -> str:
    """Path of a console script installed beside this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise CliError(f"'{name}' is not installed: run `make venv` (or pip install -e .)")
    return found


def micropython() -> str:
    return os.environ.get("OUTSTACK_MICROPYTHON") or tool("micropython")
