"""For a project's own tests (pytest, on the host): the `board` fixture boots the project's
firmware, the project around the test file, on a fresh virtual board (the real MicroPython
interpreter) and talks to its servers through the live prompt, as a person would.

    from outstack.testing import board  # noqa: F401

    def test_greets(board):
        assert board.call("hello", "greet", "Ada") == "hello, Ada"
"""

import ast
import time
from pathlib import Path

import pytest

from .errors import CliError
from .project import find

PROMPT = "\n>>> "


class BoardError(AssertionError):
    """The board answered with a traceback (or not at all)."""


class ProjectBoard:
    def __init__(self, vb):
        self.vb = vb  # the outstack.sim.VirtualBoard, for power cuts, resets, ports

    @property
    def output(self) -> str:
        return self.vb.output.decode(errors="replace").replace("\r\n", "\n")

    def type(self, line: str, timeout: float = 30.0) -> str:
        """Type one line at the live prompt; what it printed before the next prompt."""
        start = len(self.output)
        self.vb.type(line.encode() + b"\r")
        end = time.monotonic() + timeout
        while True:
            seen = self.output[start:]
            at = seen.find(line)
            done = seen.find(PROMPT, at + len(line)) if at >= 0 else -1
            if done >= 0:
                return seen[at + len(line):done].strip("\n")
            if time.monotonic() > end:
                raise BoardError(f"no answer to {line!r} within {timeout:g} s:\n{seen}")
            time.sleep(0.02)

    def call(self, server: str, msg, arg=None, timeout: float = 30.0):
        """`await call(server, msg, arg)` on the board; the reply (a Python literal)."""
        said = self.type(f"await call({server!r}, {msg!r}, {arg!r})", timeout)
        if "Traceback" in said or "Error" in said.split(":", 1)[0]:
            raise BoardError(f"{server}.{msg}({arg!r}) raised on the board:\n{said}")
        try:
            return ast.literal_eval(said) if said else None
        except (ValueError, SyntaxError):
            return said  # not a literal (an object's repr): the text itself

    def ready(self, timeout: float = 30.0) -> "ProjectBoard":
        end = time.monotonic() + timeout
        while PROMPT.lstrip("\n") not in self.output:
            if time.monotonic() > end:
                raise BoardError(f"the board's live prompt did not come up:\n{self.output}")
            time.sleep(0.02)
        return self


def boot(tmp_path: Path, start: Path | None = None, config: str | None = None):
    """A started virtual board of the project at or above `start`."""
    from .commands.image import build
    from .sim import VirtualBoard

    try:
        project = find(start=start)
    except CliError as e:
        raise pytest.UsageError(str(e)) from None
    img = tmp_path / f"flash-{project.board}.img"
    build(project, img, project.board, config)
    vb = VirtualBoard(img, project.board).start()
    vb.wait_for("booted")
    return vb


@pytest.fixture
def board(request, tmp_path):
    """The project's firmware running on a fresh virtual board (stopped after the test)."""
    vb = boot(tmp_path, Path(str(request.fspath)).parent)
    try:
        yield ProjectBoard(vb).ready()
    finally:
        vb.stop()
