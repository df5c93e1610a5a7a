"""Shared fixtures: fresh virtual boards on temporary flash images, and the real mpremote."""

import subprocess
import sys
from pathlib import Path

import pytest

from outstack import image
from outstack.sim import VirtualBoard

BIN = Path(sys.executable).parent


def mpremote(port, *args, timeout=60, check=True):
    """Run the stock mpremote CLI against `port`; return its CompletedProcess (text)."""
    out = subprocess.run([str(BIN / "mpremote"), "connect", port, *args],
                         capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({out.returncode}):\n"
                             f"{out.stdout}\n{out.stderr}")
    return out


def outstack(*args, timeout=120, input=None):
    return subprocess.run([str(BIN / "outstack"), *args], capture_output=True, text=True,
                          timeout=timeout, input=input)


@pytest.fixture
def make_board(tmp_path):
    """make_board(board='unix', files={board_path: text_or_bytes}, **VirtualBoard options)."""
    made = []

    def make(board="unix", files=None, start=True, **kw):
        img = tmp_path / f"flash-{len(made)}.img"
        extra = []
        for dest, content in (files or {}).items():
            src = tmp_path / f"extra-{len(made)}-{len(extra)}"
            src.write_bytes(content.encode() if isinstance(content, str) else content)
            extra.append((str(src), dest))
        layout = [f for f in image.layout(board) if f[1] not in (files or {})]
        image.build(img, board, layout + extra)
        vb = VirtualBoard(img, board, **kw)
        made.append(vb)
        if start:
            vb.start()
            vb.wait_for("booted")
        return vb

    yield make
    for vb in made:
        vb.stop()
