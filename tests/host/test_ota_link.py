"""The update link on a virtual board: a package pushed over the throttled UART1 pty (and
TCP) lands on flash whole, resumes after a cut link, survives noise, refuses a second push
and a package that cannot fit."""

import hashlib
import json
import random
import threading
import time

import pytest

from outstack import image
from outstack.errors import CliError
from outstack.ota.transfer import Sender, SerialLine, TcpLine
from tests.conftest import outstack

MAIN = """
from outstack.system import System
TABLE = {"ota": {"factory": "outstack.ota.service:OtaServer", "essential": True,
                 "rights": ("debug",),
                 "config": {"tcp_port": %d, "max_size": 200000, "install": False,
                            "tcp_console": True}}}
System(TABLE, config_path="/none.json").run_forever()
"""


def _board(make_board, tcp_port=0, **kw):
    vb = make_board(files={"/main.py": MAIN % tcp_port}, **kw)
    deadline = time.monotonic() + 10
    while b">>> " not in vb.output and time.monotonic() < deadline:
        time.sleep(0.02)
    return vb


def _on_flash(vb, path="/.outstack/ota/incoming.pkg"):
    vb.cut_power()
    vb.wait_for("power-off")
    return image.read_file(vb.image, "unix", path)


def test_push_over_uart_lands_whole(make_board):
    # The rate (near the line rate on an idle machine) is a figure of bench/ota.py: a busy
    # host slows the board, not the link.
    vb = _board(make_board)
    data = random.Random(1).randbytes(40000)
    line = SerialLine(vb.uart_port)
    t0 = time.monotonic()
    said = Sender(line).push(data)
    took = time.monotonic() - t0
    line.close()
    rate = len(data) / took
    print(f"UART push: {len(data)} bytes in {took:.2f} s = {rate:.0f} B/s, "
          f"{100 * rate / 11520:.1f}% of the 11520 B/s line rate")
    assert said == "received 40000 bytes"
    assert _on_flash(vb) == data


def test_cut_link_resumes_from_what_the_board_has(make_board):
    vb = _board(make_board)
    data = random.Random(2).randbytes(30000)
    line = SerialLine(vb.uart_port)
    sender = Sender(line)
    timer = threading.Timer(1.2, line.close)  # the cable comes out mid-push
    timer.start()
    with pytest.raises(Exception):
        sender.push(data)
    time.sleep(0.2)
    line = SerialLine(vb.uart_port)
    again = Sender(line)
    assert again.push(data) == "received 30000 bytes"
    line.close()
    assert again.resumed_from >= 8192, again.resumed_from  # not from zero
    assert _on_flash(vb) == data


def test_noise_on_the_uart_is_ignored(make_board):
    vb = _board(make_board)
    line = SerialLine(vb.uart_port)
    line.write(random.Random(2).randbytes(3000))  # noise before the frames (seeded)
    data = random.Random(3).randbytes(5000)
    assert Sender(line).push(data) == "received 5000 bytes"
    line.close()
    assert _on_flash(vb) == data


def test_second_push_while_one_is_in_progress_is_told_busy(make_board):
    port = random.randint(20000, 40000)
    vb = _board(make_board, tcp_port=port)
    data = random.Random(4).randbytes(30000)
    uart = SerialLine(vb.uart_port)
    first = threading.Thread(target=lambda: Sender(uart).push(data))
    first.start()
    time.sleep(0.5)
    tcp = TcpLine("127.0.0.1", port)
    with pytest.raises(CliError, match="busy with another push"):
        Sender(tcp).push(b"second")
    tcp.close()
    first.join(30)
    uart.close()
    assert hashlib.sha256(_on_flash(vb)).digest() == hashlib.sha256(data).digest()


def test_push_over_tcp_and_oversize_refused(make_board):
    port = random.randint(20000, 40000)
    vb = _board(make_board, tcp_port=port)
    tcp = TcpLine("127.0.0.1", port)
    assert Sender(tcp).push(b"x" * 20000) == "received 20000 bytes"
    with pytest.raises(CliError, match="over the 200000-byte limit"):
        Sender(tcp).push(b"y" * 250000)
    tcp.close()
    assert _on_flash(vb) == b"x" * 20000  # the refused one changed nothing


def test_the_update_link_carries_the_console_too(make_board):
    # One UART1 (and one TCP port) for updates and debugging: the OTA server answers console
    # frames between pushes, and a push still goes through on the same link afterwards.
    import json
    import socket

    from tests.conftest import outstack

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        tcp = s.getsockname()[1]
    vb = _board(make_board, tcp)
    for port in (vb.uart_port, f"127.0.0.1:{tcp}"):
        out = outstack("console", "--port", port, "--json", "servers")
        assert out.returncode == 0, out.stderr
        assert [r["name"] for r in json.loads(out.stdout)["servers"]] == ["ota"]
    line = SerialLine(vb.uart_port)
    try:
        assert Sender(line).push(b"after the console" * 100) == "received 1700 bytes"
    finally:
        line.close()


def test_a_malformed_hello_or_a_stray_abort_is_answered_and_the_push_goes_on(make_board):
    # The push code loads at a HELLO and goes after: a HELLO it refuses, or an ABORT with
    # no push, leaves no half-made state behind (the server must not crash on the next frame).
    from outstack.ota.transfer import Frames, frame

    vb = _board(make_board)
    line = SerialLine(vb.uart_port)
    frames = Frames(line)
    for kind, payload, said in ((0x48, b"short", b"malformed HELLO"),
                                (0x41, b"", b"aborted by the host")):
        line.write(frame(kind, payload))
        got = frames.next(30)
        assert got == (0x58, said), got
    data = random.Random(6).randbytes(3000)
    assert Sender(line).push(data) == "received 3000 bytes"
    line.close()
    out = outstack("console", "--port", vb.usb_port, "--json", "servers")
    rows = json.loads(out.stdout)["servers"]
    assert [(r["name"], r["restarts"]) for r in rows] == [("ota", 0)], rows
    assert _on_flash(vb) == data
