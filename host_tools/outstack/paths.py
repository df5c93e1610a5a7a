"""Where the framework is (lib/, boards/, the virtual board's rom) and the MicroPython
executables in this environment. A user's firmware is not here: see project.py."""

import os
import shutil
import sys
from pathlib import Path

from .errors import CliError

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "boards"
ROM = BOARDS / "unix" / "rom"
LIB = ROOT / "lib"
BUILD = ROOT / "build"  # the framework's own cache (the mip index, firmware, sources)


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
