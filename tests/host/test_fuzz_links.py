"""Fuzzing UART1 and TCP, seeded and repeatable: each link gets OUTSTACK_FUZZ_BYTES (default
1 MB) of random bytes, random frames with valid CRCs and truncated frames; TCP also gets a flood
of OUTSTACK_FUZZ_CONNECTIONS (default 1000) connections. Afterwards the board has not reset,
every server answers on every link, the heap is back within a few KB, and a legitimate push
and a signed console command work. Prints the figures for the report."""

import json
import os
import random
import socket
import time

from outstack.ota.transfer import Sender, SerialLine, TcpLine, frame
from tests.conftest import outstack
from tests.host.test_console_auth import MAIN, GREET, free_port, keydirs, pem  # noqa: F401

BYTES = int(os.environ.get("OUTSTACK_FUZZ_BYTES", 1 << 20))
CONNECTIONS = int(os.environ.get("OUTSTACK_FUZZ_CONNECTIONS", 1000))
KINDS = b"HDEASQRCNKXB"  # every frame kind the link knows, and others at random


def hostile(rng: random.Random, n: int):
    """n bytes in pieces: noise, valid frames of any kind, frames cut short."""
    made = 0
    while made < n:
        pick = rng.random()
        if pick < 0.4:
            piece = rng.randbytes(rng.randint(1, 4096))
        else:
            kind = rng.choice(KINDS) if rng.random() < 0.8 else rng.randrange(256)
            body = rng.randbytes(rng.choice((0, 4, 8, 36, rng.randint(0, 1040), 1200)))
            piece = frame(kind, body[:65535])
            if pick > 0.75:
                piece = piece[:rng.randint(1, len(piece) - 1)]  # truncated
        made += len(piece)
        yield piece


def _mem(port, key=None):
    extra = ("--key", key) if key else ()
    out = outstack("console", "--port", port, "--json", *extra, "mem")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["alloc"]


def _uptime(port):
    out = outstack("console", "--port", port, "--json", "servers")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert all(r["state"] == "running" for r in d["servers"]), d
    return d["uptime_ms"]


def test_fuzzed_links_leave_the_board_up_unchanged_and_working(make_board, keydirs, tmp_path):
    tcp = free_port()
    # UART1 at 921600: the host's pty holds a writer back to what the board takes, so 1 MB
    # goes through in seconds, not the 91 s it takes at 115200
    ota = {"keys": [json.loads((keydirs["trusted"] / "ota-pub.json").read_text())],
           "tcp_port": tcp, "tcp_console": True, "install": True, "baud": 921600}
    vb = make_board(files={"/main.py": MAIN, "/ota.json": json.dumps(ota), "/app/greet.py": GREET},
                    uart_baud=None)
    end = time.monotonic() + 10
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    for p in (vb.uart_port, f"127.0.0.1:{tcp}"):  # warm: every path loaded once, as after
        outstack("console", "--port", p, "--json", "servers")
        outstack("console", "--port", p, "--key", pem(keydirs, "trusted"), "level", "greet", "INFO")
    _mem(vb.usb_port)
    before = _mem(vb.usb_port)
    mark = vb.mark()
    rng = random.Random(20261130)
    t0 = time.monotonic()
    uart = SerialLine(vb.uart_port)
    fuzzed_uart = 0
    for piece in hostile(rng, BYTES):
        uart.write(piece)
        fuzzed_uart += len(piece)
    uart.close()
    uart_s = time.monotonic() - t0
    fuzzed_tcp = attempted = 0
    gen = hostile(rng, BYTES)
    for i in range(CONNECTIONS):
        attempted += 1
        try:
            s = socket.create_connection(("127.0.0.1", tcp), timeout=10)
        except OSError:
            continue  # refused while the board works through the flood: allowed
        try:
            if i % 4 == 0:  # every 4th connection carries a share of the hostile bytes
                for _ in range(max(1, BYTES // (CONNECTIONS // 4) // 2000)):
                    piece = next(gen, b"")
                    s.sendall(piece)
                    fuzzed_tcp += len(piece)
        except OSError:
            pass  # the board closed it (too many at once, or idle): its right
        finally:
            s.close()
    for piece in gen:  # what is left goes down one more connection
        try:
            with socket.create_connection(("127.0.0.1", tcp), timeout=10) as s:
                s.sendall(piece)
                fuzzed_tcp += len(piece)
        except OSError:
            pass
    took = time.monotonic() - t0
    # the board worked through all of it: every link answers again, nothing reset
    deadline = time.monotonic() + 120
    while True:
        outs = [outstack("console", "--port", p, "--json", "servers")
                for p in (vb.uart_port, f"127.0.0.1:{tcp}")]
        if all(o.returncode == 0 for o in outs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    after = _mem(vb.usb_port)
    up = _uptime(vb.usb_port)
    assert up > took * 1000 * 0.5 and vb.mark() == mark or not any(
        e.kind in ("booted", "wdt-reset") for e in vb.events[mark:]), "the board reset"
    key = pem(keydirs, "trusted")
    for p in (vb.uart_port, f"127.0.0.1:{tcp}"):
        out = outstack("console", "--port", p, "--key", key, "restart", "greet")
        assert out.returncode == 0 and "greet: restarted" in out.stdout, (
            out.stderr, vb.events[mark:], bytes(vb.output[-3000:]))
    line = TcpLine("127.0.0.1", tcp)
    try:
        pkg = tmp_path / "g.py"
        pkg.write_text(GREET.replace("v1", "v2"))
        r = outstack("ota", "pack", f"{pkg}=app/greet.py", "--key", key, "--board", "unix",
                     "--seq", "9", "--out", str(tmp_path / "g.pkg"), "--source")
        assert r.returncode == 0, r.stderr
        said = Sender(line).push((tmp_path / "g.pkg").read_bytes())
    finally:
        line.close()
    assert said.startswith("installed update 9"), said
    print(f"fuzz: UART1 {fuzzed_uart} bytes, TCP {fuzzed_tcp} bytes over {attempted} connections "
          f"attempted, {took:.1f} s (UART1 {uart_s:.1f} s); resets 0; heap alloc {before} -> {after} "
          f"({after - before:+d} bytes)")
    assert after - before < 8192, (before, after)
