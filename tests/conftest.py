"""Shared fixtures: fresh virtual boards on temporary flash images, and the real mpremote."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from outstack import image
from outstack.paths import ROOT
from outstack.sim import VirtualBoard

BIN = Path(sys.executable).parent
DEMO = ROOT / "firmware"  # the demo project's firmware: the default of most tests' boards


def pytest_sessionstart(session):
    """The demo project trusts its dev key (outstack.toml); `make run` makes it, and so do we."""
    if not (ROOT / "keys" / "ota-pub.json").is_file():
        from outstack.ota import keys

        keys.write_keys(keys.generate(), ROOT / "keys")


def need(why: str | None, what: str) -> None:
    """Skip the calling test module when `why` (how to get what is missing) is not None.
    CI sets OUTSTACK_STRICT=1 after installing everything: there a missing part is a failure,
    so a suite that silently skipped `what` can never pass as green."""
    if why is None:
        return
    if os.environ.get("OUTSTACK_STRICT"):
        pytest.fail(f"{what} cannot run in this CI run: {why}", pytrace=False)
    pytest.skip(f"no {what} here: {why}", allow_module_level=True)


def mpremote(port, *args, timeout=60, check=True):
    """Run the stock mpremote CLI against `port`; return its CompletedProcess (text)."""
    out = subprocess.run([str(BIN / "mpremote"), "connect", port, *args],
                         capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"mpremote {' '.join(args)} failed ({out.returncode}):\n"
                             f"{out.stdout}\n{out.stderr}")
    return out


def outstack(*args, timeout=120, input=None, cwd=ROOT):
    """Run the outstack CLI, by default in this checkout (the demo project)."""
    return subprocess.run([str(BIN / "outstack"), *args], capture_output=True, text=True,
                          timeout=timeout, input=input, cwd=cwd)


def one_line_error(out, *needles):
    """The CLI failed as it should: exit 1, one `outstack: ...` line holding each needle."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("outstack: "), out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# A main.py's head for boards that must show their loop runs: Counter counts its own ticks
# (one every 20 ms) and answers a call with the count. Tests add servers and the table.
COUNTER_MAIN = """
from outstack.system import System
from outstack.server import Server

class Counter(Server):
    def init(self, config, state):
        self.n = 0
        self.every(20, "tick")

    def handle_cast(self, msg, arg):
        self.n += 1

    def handle_call(self, msg, arg):
        return self.n
"""


def text(board, start=0) -> str:
    """What the board printed (on its console) from byte `start` on."""
    return board.output[start:].decode(errors="replace")


def wait_text(board, needle: str, start=0, timeout=60.0) -> str:
    """Wait until the board has printed `needle` after byte `start`; everything since then."""
    end = time.monotonic() + timeout
    while needle not in text(board, start):
        assert time.monotonic() < end, f"no {needle!r} in:\n{text(board, start)[-3000:]}"
        time.sleep(0.02)
    return text(board, start)


def typed(vb, line, timeout=60.0):
    """Type `line` at the board's live prompt; return the line it answered with."""
    start = len(vb.output)
    vb.type(line.encode() + b"\r")
    end = time.monotonic() + timeout
    while True:
        text = vb.output[start:].decode(errors="replace")
        lines = text.split("\r\n")
        echo = [i for i, seen in enumerate(lines) if seen.endswith(line)]
        if echo and len(lines) > echo[0] + 2:
            return lines[echo[0] + 1]  # the line after the echoed command: its answer
        assert time.monotonic() < end, f"no answer to {line!r}:\n{text}"
        time.sleep(0.02)


def number(vb, line, timeout=60.0):
    """The integer the board answers to `line` typed at its live prompt (top-level `await`
    works there), found among the lines after the echo however the board's own lines (a
    handler-budget warning on a busy host) interleave with the answer."""
    start = len(vb.output)
    vb.type(line.encode() + b"\r")
    end = time.monotonic() + timeout
    while True:
        lines = bytes(vb.output[start:]).decode(errors="replace").split("\r\n")
        echo = next((i for i, seen in enumerate(lines) if seen.endswith(line)), None)
        if echo is not None:
            # A whole line only: one the board has ended (the last piece may still grow).
            found = [x for x in lines[echo + 1:-1] if re.fullmatch(r"-?\d+", x)]
            if found:
                return int(found[0])
        assert time.monotonic() < end, f"no number answered {line!r}: {lines}"
        time.sleep(0.05)


def qemu_why() -> str | None:
    """Why the QEMU board cannot run here (and how to get what is missing), or None."""
    from outstack import firmware
    from outstack.sim.qemu import qemu_binary

    return firmware.missing() or (None if qemu_binary() else
                                  "qemu-system-arm is not installed: apt-get install qemu-system-arm")


def qemu_firmware() -> Path:
    """The mps2-an385 firmware (built once, cached in build/firmware), or a skip that says
    what is missing here and how to get it (a failure in CI: see need)."""
    from outstack import firmware

    need(qemu_why(), "QEMU board")
    return firmware.build("mps2-an385")


@pytest.fixture
def make_board(tmp_path):
    """make_board(board='unix', files={board_path: text_or_bytes}, firmware=DIR (instead of
    the demo's), source=True (modules as .py, not compiled), engine='unix', **board options).
    A file given replaces the firmware's module of the same name, .py or .mpy.
    engine='qemu': real MicroPython firmware on an emulated mps2-an385 (QemuBoard; board
    defaults to it), the framework and micropython-lib frozen in as a product ships them, so
    the image holds the project's firmware/ files only. It is started but not waited for:
    its `booted` comes with the REPL banner, after main.py returns; wait for what it prints."""
    made = []

    def make(board=None, files=None, start=True, firmware=None, source=False, engine="unix",
             **kw):
        board = board or ("mps2-an385" if engine == "qemu" else "unix")
        elf = qemu_firmware() if engine == "qemu" else None
        img = tmp_path / f"flash-{len(made)}.img"
        extra = []
        for dest, content in (files or {}).items():
            src = tmp_path / f"extra-{len(made)}-{len(extra)}"
            src.write_bytes(content.encode() if isinstance(content, str) else content)
            extra.append((str(src), dest))
        fw = Path(firmware or DEMO).resolve()
        base = image.layout(board, fw, packages=engine != "qemu")
        if engine == "qemu":  # the framework and packages are in the firmware, frozen
            base = [f for f in base if not f[1].startswith("/lib/") or Path(f[0]).is_relative_to(fw)]
        if not source:  # as a board gets it (outstack image/deploy): modules as .mpy
            from outstack.stage import stage

            base = [(str(p), d) for p, d in stage(base, board, out=tmp_path / f"mpy-{len(made)}")]
        given = {d[:-3] + ".mpy" if d.endswith(".py") else d for d in (files or {})} | set(files or {})
        layout = [f for f in base if f[1] not in given]
        image.build(img, board, layout + extra)
        if engine == "qemu":
            from outstack.sim.qemu import QemuBoard

            vb = QemuBoard(img, board, firmware=elf, **kw)
        else:
            vb = VirtualBoard(img, board, **kw)
        made.append(vb)
        if start:
            vb.start()
            if engine != "qemu":
                vb.wait_for("booted")
        return vb

    yield make
    for vb in made:
        vb.stop()
