"""The README's walkthrough and its OTA and debugging commands, run as written: the shell
blocks are read out of README.md (not copied here) and run by bash, each command required to
succeed, against the kind of board `make run` gives (the demo project, on a virtual board)."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, outstack
from outstack.paths import ROOT

README = (ROOT / "README.md").read_text()


def blocks(section: str) -> list[str]:
    """The ```sh blocks of the README section whose heading starts with `section`."""
    m = re.search(rf"^## {re.escape(section)}.*?$(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert m, f"README.md has no section '{section}'"
    found = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.M | re.S)
    assert found, f"README.md section '{section}' has no sh block"
    return found


def run_block(block: str, cwd: Path, timeout=300) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("OUTSTACK_PROJECT", None)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, text=True,
                         capture_output=True, timeout=timeout)
    assert out.returncode == 0, f"README block failed ({out.returncode}):\n{block}\n---\n" \
                                f"{out.stdout}\n{out.stderr}"
    return out.stdout


def test_the_first_project_walkthrough_runs_as_written(tmp_path):
    (walk,) = blocks("Your first project")
    try:
        said = run_block(walk, tmp_path)
    finally:
        outstack("sim", "--stop", "--project", str(tmp_path / "myapp"), cwd=tmp_path)
    assert "made project 'myapp'" in said
    assert re.search(r"hello +running", said) and "sensor" not in said  # the project, not the demo
    assert re.search(r"installed update 1: hello restarted, healthy; serving [\d.]+ s", said), said
    assert "1 passed" in said  # the project's own test
    assert "switched off" in said


@pytest.fixture
def make_runs_board(tmp_path):
    """The demo project, as `make run` boots it (keys made, a fresh image, a virtual board),
    in a copy so the README's commands leave this checkout alone."""
    demo = tmp_path / "demo"
    demo.mkdir()
    for part in ("outstack.toml", "firmware", "keys"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, demo / part)
    r = outstack("sim", "--fresh", "--detach", cwd=demo)
    assert r.returncode == 0, r.stdout + r.stderr
    yield demo
    outstack("sim", "--stop", cwd=demo)


def test_the_ota_and_console_commands_run_as_written(make_runs_board):
    ota = blocks("Updating a board in the field")
    said = "".join(run_block(b, make_runs_board) for b in ota)
    assert "board: installed update 7" in said, said
    assert "rolled app.sensor back as update 8" in said, said
    assert "board: installed update 9" in said, said  # signed with openssl
    assert "accepted 2 new trusted key(s)" in said, said
    debug = "".join(run_block(b, make_runs_board) for b in blocks("Debugging a running board"))
    assert re.search(r"sensor +running", debug) and "storage" in debug, debug
