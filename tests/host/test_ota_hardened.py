"""The update link and installer against what a hostile or broken peer does: half frames,
held push locks, foreign ABORTs, floods of TCP connections, a crashed or restarted OTA server,
new code that fails to load, bad rollback names, a stale part file. Real board, real links."""

import json
import socket
import time

import pytest

from outstack.errors import CliError
from outstack.ota.transfer import (ABORT, BUSY, DONE, FAIL, HELLO, READY, STATUS, Frames,
                                   Sender, SerialLine, TcpLine, frame)
from tests.conftest import one_line_error, outstack
from tests.host.test_console_auth import GREET, _board, console, keydirs, pem  # noqa: F401


def _status(line, timeout=10.0):
    line.write(frame(STATUS))
    got = Frames(line).next(timeout)
    assert got is not None and got[0] == DONE, got
    return json.loads(got[1])


def _pack(tmp_path, keydirs, source, seq, name="greet", version="2.0.0"):
    src = tmp_path / f"{name}-{seq}.py"
    src.write_text(source)
    out = tmp_path / f"{name}-{seq}.pkg"
    r = outstack("ota", "pack", f"{src}=app/{name}.py", "--key", pem(keydirs, "trusted"),
                 "--board", "unix", "--seq", str(seq), "--out", str(out), "--source",
                 "--module-version", version)
    assert r.returncode == 0, r.stderr
    return out


def _greet(vb):
    return console(vb.uart_port, "--json", "info", "greet")


def test_a_half_frame_is_dropped_and_the_link_answers_again(make_board, keydirs):
    vb = _board(make_board, keydirs)
    line = SerialLine(vb.uart_port)
    try:
        line.write(b"\xa5\x5a\x53\x40\x00" + b"\x00" * 7)  # says 64 bytes follow; 7 come
        time.sleep(3.0)  # past the board's 2 s gap: it has dropped them (no more bytes come)
        assert "running" in _status(line)
    finally:
        line.close()


def test_the_push_lock_belongs_to_a_link_that_makes_progress(make_board, keydirs):
    vb = _board(make_board, keydirs)
    holder = TcpLine("127.0.0.1", vb.tcp)
    holder.write(frame(HELLO, (5000).to_bytes(4, "little") + b"\x11" * 32))
    assert Frames(holder).next(10)[0] == READY
    other = TcpLine("127.0.0.1", vb.tcp)
    try:
        other.write(frame(ABORT))  # not its push: refused, the holder's push untouched
        got = Frames(other).next(10)
        assert got[0] == FAIL and b"belongs to another link" in got[1]
        with pytest.raises(CliError, match="busy"):
            Sender(other).push(b"z" * 3000)
        said = None
        end = time.monotonic() + 60
        while said is None and time.monotonic() < end:  # the holder only asks STATUS now
            _status(holder)
            try:
                said = Sender(other).push(b"z" * 3000)
            except CliError as e:
                assert "busy" in str(e)
                time.sleep(2)
        assert said == "refused: malformed package: not an Outstack package (bad magic)" or \
            said.startswith("refused"), said  # the lock passed on: the package was read
    finally:
        holder.close()
        other.close()


def test_tcp_connections_are_capped_and_closed(make_board, keydirs):
    vb = _board(make_board, keydirs)
    held = [socket.create_connection(("127.0.0.1", vb.tcp), timeout=10) for _ in range(3)]
    extra = TcpLine("127.0.0.1", vb.tcp)
    got = Frames(extra).next(10)
    assert got[0] == FAIL and b"too many connections" in got[1]
    with pytest.raises(EOFError):  # and the board closed it
        while True:
            extra.read(5)
    for s in held:
        s.close()
    line = SerialLine(vb.uart_port)
    try:
        end = time.monotonic() + 20
        while TcpLine("127.0.0.1", vb.tcp) and time.monotonic() < end:
            t = TcpLine("127.0.0.1", vb.tcp)
            try:
                if "running" in _status(t):
                    break
            except (AssertionError, EOFError):
                time.sleep(0.5)
            finally:
                t.close()
        else:
            raise AssertionError("the held connections were never let go")
    finally:
        line.close()


@pytest.mark.parametrize("how", [("restart", "ota"), ("fault", "ota", "crash")])
def test_the_ota_server_restarted_over_its_own_link_answers_first_and_comes_back(
        make_board, keydirs, how):
    vb = _board(make_board, keydirs)
    for port in (vb.uart_port, f"127.0.0.1:{vb.tcp}"):
        out = console(port, *how, key=pem(keydirs, "trusted"))
        assert out.returncode == 0, (port, out.stdout, out.stderr)
        end = time.monotonic() + 30
        while True:  # it comes back on both links: its TCP port was released and bound again
            back = [console(p, "--json", "info", "ota") for p in (vb.uart_port, f"127.0.0.1:{vb.tcp}")]
            if all(b.returncode == 0 and json.loads(b.stdout)["state"] == "running" for b in back):
                break
            assert time.monotonic() < end, [b.stderr for b in back]
            time.sleep(0.5)
    assert vb.state == "on"


@pytest.mark.parametrize("source, why", [
    ("import no_such_module\n", "ImportError"),
    ("x = bytearray(10_000_000)\n", "MemoryError"),
    (GREET.replace("def handle_call", "def init(self, config, state):\n        raise "
                   "ValueError('init says no')\n    def handle_call"), "init says no"),
])
def test_new_code_that_fails_to_load_is_rolled_back_with_the_reason(make_board, keydirs,
                                                                     tmp_path, source, why):
    vb = _board(make_board, keydirs)
    pkg = _pack(tmp_path, keydirs, source, 3)
    out = outstack("ota", "push", str(pkg), "--port", vb.uart_port, timeout=120)
    one_line_error(out, "rolled back update 3", why)
    line = SerialLine(vb.uart_port)
    try:
        st = _status(line)
    finally:
        line.close()
    assert (st["running"], st["state"]) == (0, "good") and why in st["rolled_back"], st
    info = _greet(vb)
    assert info.returncode == 0 and json.loads(info.stdout)["state"] == "running"


def test_rollback_names_are_checked_and_long_names_refused(make_board, keydirs, tmp_path):
    vb = _board(make_board, keydirs)
    for seq, name in ((4, "app./greet"), (5, "app." + "g" * 300)):
        out = outstack("ota", "rollback", name, "--key", pem(keydirs, "trusted"),
                       "--board", "unix", "--seq", str(seq), "--port", vb.uart_port)
        one_line_error(out, "refused (path)", "Python names")
    src = tmp_path / "long.py"
    src.write_text(GREET)
    r = outstack("ota", "pack", f"{src}=app/{'g' * 300}.py", "--key", pem(keydirs, "trusted"),
                 "--board", "unix", "--seq", "6", "--out", str(tmp_path / "l.pkg"), "--source")
    if r.returncode == 0:  # the host let it through: the board says no, clearly
        out = outstack("ota", "push", str(tmp_path / "l.pkg"), "--port", vb.uart_port)
        one_line_error(out, "refused (path)", "at most 64 characters")
    else:
        one_line_error(r)


def test_a_part_file_left_by_a_stranger_gives_way_to_a_real_push(make_board, keydirs):
    vb = _board(make_board, keydirs, install=False, max_size=4_000_000)
    probe = TcpLine("127.0.0.1", vb.tcp)
    probe.write(frame(HELLO, (3_000_000).to_bytes(4, "little") + b"\x00" * 32))
    got = Frames(probe).next(10)
    probe.close()
    assert got[0] == FAIL and b"bytes of flash free" in got[1], got
    free = int(got[1].split(b": ")[1].split()[0])
    stranger = TcpLine("127.0.0.1", vb.tcp)

    def cut(done, total):
        if done > free - 40000:
            raise KeyboardInterrupt  # the stranger goes away with most of flash taken

    with pytest.raises(KeyboardInterrupt):
        Sender(stranger, cut).push(b"\x5a" * (free - 4096))
    stranger.close()
    mine = TcpLine("127.0.0.1", vb.tcp)
    try:
        end = time.monotonic() + 30
        while True:  # the stranger's lock goes when its link does (or when it goes stale)
            try:
                said = Sender(mine).push(b"m" * 60000)
                break
            except CliError as e:
                assert "busy" in str(e) and time.monotonic() < end, e
                time.sleep(1)
    finally:
        mine.close()
    assert said == "received 60000 bytes", said


HANG = GREET.replace("def handle_call", "def init(self, config, state):\n        while True:\n"
                     "            pass\n    def handle_call")


def test_a_watchdog_reset_during_an_install_is_told_with_its_reason(make_board, keydirs,
                                                                     tmp_path):
    vb = _board(make_board, keydirs, files={"/wd.json": json.dumps({"watchdog_ms": 1500})},
                main=lambda m: m.replace("/none.json", "/wd.json"))
    good = _pack(tmp_path, keydirs, GREET.replace("v1", "v2"), 3)
    assert outstack("ota", "push", str(good), "--port", vb.uart_port).returncode == 0
    bad = _pack(tmp_path, keydirs, HANG, 4, version="3.0.0")
    out = outstack("ota", "push", str(bad), "--port", vb.uart_port, timeout=180)
    one_line_error(out, "went down during the install", "update 4 was not confirmed",
                   "cause WDT", "rolled back to 3")
    st = outstack("ota", "status", "--port", vb.uart_port)
    assert st.returncode == 0, st.stderr
    assert "running update 3 (good), previous 0" in st.stdout, st.stdout
    assert "last rollback: update 4 was not confirmed before the reset (cause WDT)" in st.stdout


def test_a_silent_tcp_peer_is_let_go(make_board, keydirs):
    vb = _board(make_board, keydirs, idle_ms=1500)
    held = [TcpLine("127.0.0.1", vb.tcp) for _ in range(3)]  # every slot taken, then silence
    for line in held:
        with pytest.raises(EOFError):  # the board closes each: idle
            end = time.monotonic() + 30
            while time.monotonic() < end:
                line.read(1)
        line.close()
    t = TcpLine("127.0.0.1", vb.tcp)
    try:
        assert "running" in _status(t)  # the slots are free again
    finally:
        t.close()
