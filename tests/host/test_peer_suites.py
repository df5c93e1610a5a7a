"""Peer test suites as the judge of fidelity: tools no one here wrote (MicroPython's own
run-tests.py and mpremote's test scripts, from the pinned snapshot) must not tell a virtual board
from a board. A slice of them runs here on both engines; `bench/peer.py` runs them whole and prints
the table. Every result must match the bare interpreter's (mpremote's: its .exp), or be one of the
differences listed, with its reason, in bench/peer.py's EXPLAINED and MPREMOTE_EXPLAINED.

Skipped, with how to get one, where no MicroPython source tree is found (QEMU tests also need the
ARM toolchain and qemu-system-arm)."""

import importlib.util
import os
import subprocess
import sys

import pytest

from outstack import firmware
from outstack.paths import ROOT

from tests.conftest import BIN, need

_why = None
try:
    firmware._sources()
except Exception as e:  # noqa: BLE001  the one reason a user sees: how to get a tree
    _why = str(e)
need(_why, "MicroPython tree for the peer suites")

_spec = importlib.util.spec_from_file_location("peer", ROOT / "bench" / "peer.py")
peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peer)
# A missing engine skips here; in CI (OUTSTACK_STRICT) it runs, and fails saying why.
ENGINES = [pytest.param(e, marks=pytest.mark.skipif(
    bool(peer.missing(e)) and not os.environ.get("OUTSTACK_STRICT"),
    reason=f"{e}: {peer.missing(e)}")) for e in peer.BOARDS]


@pytest.fixture(scope="module")
def tree():
    return peer.snapshot()


@pytest.fixture(scope="module")
def bare(tree, tmp_path_factory):
    return peer.run_tests(tree, "unix", peer.short_tests(tree), tmp_path_factory.mktemp("bare"))


@pytest.mark.parametrize("engine", ENGINES)
def test_run_tests_on_the_board_match_the_bare_interpreter(engine, tree, bare, tmp_path):
    with peer.board(engine, tree, tmp_path) as vb:
        got = peer.run_tests(tree, vb.usb_port, peer.short_tests(tree), tmp_path / "results",
                             timeout=900)  # a slice: minutes at most, even on a busy host
    assert set(got) == set(bare)
    unexplained = [d for d in peer.differences(engine, got, bare) if d[3] is None]
    assert not unexplained, unexplained
    assert sum(r == "pass" for r, _ in got.values()) > len(got) // 2  # the suite really ran


@pytest.mark.parametrize("engine", ENGINES)
def test_mpremotes_own_tests_pass_on_the_board(engine, tree, tmp_path):
    with peer.board(engine, tree, tmp_path) as vb:
        got = peer.mpremote_suite(tree, vb.usb_port, peer.SHORT_MPREMOTE)
    verdicts = {name: peer.mpremote_verdict(engine, name, status, out, tree)
                for name, (status, out) in got.items()}
    failed = {name: said for name, (ok, said) in verdicts.items() if not ok}
    assert not failed, failed


def test_every_explained_difference_names_a_reason_and_a_real_test(tree):
    for engines, pattern, was, now, why in peer.EXPLAINED:
        assert set(engines) <= set(peer.BOARDS) and was != now and len(why) > 40
        assert list((tree / "tests").glob(pattern)), pattern
    for engines, name, _, _, why in peer.MPREMOTE_EXPLAINED:
        assert (tree / "tools/mpremote/tests" / name).is_file() and len(why) > 10


def test_the_unix_boards_unicode_repr_is_the_bare_interpreters(tree):
    """The one mpremote difference put down to the interpreter: the bare one says the same."""
    line = next(e for e in peer.MPREMOTE_EXPLAINED if e[0] == ("unix",))
    out = subprocess.run([str(BIN / "micropython"), "-c", f"print(repr({line[2]}))"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == line[3]


@pytest.mark.parametrize("engine", ENGINES)
def test_mpremote_commands_work_alike_on_both_engines(engine, tree, tmp_path):
    """fs ls, exec, run, mount, soft-reset: what a user does first with a board."""
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "hello.py").write_text("print('hello from', __name__)\n")
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('ran', sys.implementation.name)\n")

    def mp(*args):
        out = subprocess.run([str(BIN / "mpremote"), "connect", vb.usb_port, *args],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout.replace("\r\n", "\n")

    with peer.board(engine, tree, tmp_path) as vb:
        assert "lib/" in mp("fs", "ls", ":")
        assert mp("exec", "x = 6 * 7", "eval", "x").strip() == "42"
        assert mp("run", str(script)).strip() == "ran micropython"
        said = mp("mount", str(tmp_path / "here"), "exec", "import hello")
        assert "hello from hello" in said
        said = mp("exec", "y = 1", "soft-reset", "exec", "print('y' in globals())")
        assert said.strip().endswith("False")


@pytest.mark.parametrize("engine", ENGINES)
def test_code_that_leaves_ctrl_c_off_does_not_wedge_the_repl(engine, tree, tmp_path):
    """Binary protocols over the REPL turn Ctrl-C off (kbd_intr(-1)): a byte 0x03 is then data.
    A run that leaves it off must not wedge the next one, and Ctrl-C interrupts again."""
    def mp(*args):
        return subprocess.run([str(BIN / "mpremote"), "connect", vb.usb_port, *args],
                              capture_output=True, text=True, timeout=120)

    def seen(needle, since=0):
        end = peer.time.monotonic() + 60
        while needle not in vb.output[since:]:
            assert peer.time.monotonic() < end, (needle, bytes(vb.output[-300:]))
            peer.time.sleep(0.05)

    code = ("import micropython, sys\nmicropython.kbd_intr(-1)\nprint('ready')\nbuf = b''\n"
            "while not buf.endswith(b'z'):\n    buf += sys.stdin.buffer.read(1)\nprint(buf)")
    with peer.board(engine, tree, tmp_path) as vb:
        mark = len(vb.output)
        assert mp("exec", "--no-follow", code).returncode == 0
        seen(b"ready", mark)
        vb.type(b"a\x03z")
        seen(b"a\\x03z'", mark)  # the byte came through as data, not as an interrupt
        assert mp("exec", "print(6 * 7)").stdout.strip() == "42"
        assert mp("exec", "--no-follow", "while True: pass").returncode == 0
        mark = len(vb.output)
        vb.type(b"\x03")
        seen(b"KeyboardInterrupt", mark)
