"""Console authentication on UART1 and TCP (lib/outstack/debug/auth.py): a command that
changes the board must be signed by a trusted key over a fresh board challenge. Unsigned,
untrusted, revoked (rotated out) and replayed commands are refused with a clear reason on
both links; a signed one works; reads work where configured; the USB REPL needs no signature
(whoever holds it can run any code). Real keys, real CLI, real ptys and sockets."""

import base64
import json
import socket
import time

import pytest

from outstack.console import Framed, signed
from outstack.ota import keys as K
from outstack.ota.transfer import SerialLine, TcpLine
from tests.conftest import one_line_error, outstack

MAIN = """
from outstack.system import System
import json
with open("/ota.json") as f:
    ota = json.load(f)
TABLE = {"ota": {"factory": "outstack.ota.service:OtaServer", "essential": True,
                 "rights": ("ota", "debug"), "config": ota},
         "greet": {"factory": "app.greet:Greet"}}
System(TABLE, config_path="/none.json").run_forever()
"""
GREET = """
from outstack.server import Server
class Greet(Server):
    def handle_call(self, msg, arg):
        return "v1"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def keydirs(tmp_path_factory):
    out = {}
    for name in ("trusted", "other", "next"):
        d = tmp_path_factory.mktemp(name)
        r = outstack("ota", "keygen", "--out", str(d))
        assert r.returncode == 0, r.stderr
        out[name] = d
    return out


def pem(keydirs, name):
    return str(keydirs[name] / "ota-key.pem")


def _board(make_board, keydirs, files=None, main=lambda m: m, **extra):
    tcp = free_port()
    ota = {"keys": [json.loads((keydirs["trusted"] / "ota-pub.json").read_text())],
           "tcp_port": tcp, "tcp_console": True, "install": True, **extra}
    vb = make_board(files={"/main.py": main(MAIN), "/ota.json": json.dumps(ota),
                           "/app/greet.py": GREET, **(files or {})})
    end = time.monotonic() + 10
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    vb.tcp = tcp
    return vb


def ports(vb):
    return (vb.uart_port, f"127.0.0.1:{vb.tcp}")


def console(port, *words, key=None):
    # run outside any project, so no project key is found and used: only --key signs
    extra = ("--key", key) if key else ()
    return outstack("console", "--port", port, "--via", "link", *extra, *words, timeout=60,
                    cwd="/")


def test_state_changes_need_a_trusted_signature_over_a_fresh_challenge(make_board, keydirs):
    vb = _board(make_board, keydirs)
    for port in ports(vb):
        one_line_error(console(port, "level", "greet", "DEBUG"), "signature required",
                       "'level' changes the board's state", "--key KEY or $OUTSTACK_KEY")
        one_line_error(console(port, "restart", "greet", key=pem(keydirs, "other")),
                       "which this board does not trust")
        ok = console(port, "level", "greet", "DEBUG", key=pem(keydirs, "trusted"))
        assert ok.returncode == 0 and "greet: log level DEBUG" in ok.stdout, (port, ok.stderr)
        assert console(port, "info", "greet").returncode == 0  # reads are open by default
        said = json.loads(console(port, "--json", "servers").stdout)
        assert {r["name"] for r in said["servers"]} == {"ota", "greet"}
    for line in (SerialLine(vb.uart_port, opened=None), TcpLine("127.0.0.1", vb.tcp)):
        ch = Framed(line)
        try:
            key = K.load_private(pem(keydirs, "trusted"))
            cmd = signed(ch, key, "restart greet")
            assert "ok" in ch.ask(cmd), cmd  # signed: it works
            assert "replay" in ch.ask(cmd)["error"]  # the same bytes again: refused
            nonce = ch.ask("challenge")["ok"]["nonce"]  # a fresh challenge, an altered command
            sig = K.sign(key, b"outstack-console\n" + bytes.fromhex(nonce) + b"\nrestart greet")
            kid = K.key_id(key.public_key()).hex()
            forged = f"signed {nonce} {kid} {base64.b64encode(sig).decode()} restart ota"
            assert "bad signature" in ch.ask(forged)["error"]
        finally:
            ch.close()
    assert vb.state == "on"


def test_the_usb_repl_needs_no_signature(make_board, keydirs):
    vb = _board(make_board, keydirs)
    out = outstack("console", "--port", vb.usb_port, "level", "greet", "WARNING")
    assert out.returncode == 0 and "log level WARNING" in out.stdout, out.stderr


def test_reads_can_be_closed_and_a_rotated_out_key_is_refused(make_board, keydirs, tmp_path):
    vb = _board(make_board, keydirs, console_reads=False)
    for port in ports(vb):
        one_line_error(console(port, "servers"), "reading is not open on this link")
        assert console(port, "servers", key=pem(keydirs, "trusted")).returncode == 0
    statement = tmp_path / "keys.pkg"
    r = outstack("ota", "key-rotate", "--key", pem(keydirs, "trusted"), "--new",
                 str(keydirs["next"] / "ota-pub.json"), "--board", "unix", "--seq", "5",
                 "--out", str(statement))
    assert r.returncode == 0, r.stderr
    push = outstack("ota", "push", str(statement), "--port", vb.uart_port, timeout=120)
    assert push.returncode == 0, (push.stdout, push.stderr)  # a rotation that worked exits 0
    assert "accepted 1 new trusted key" in push.stdout
    for port in ports(vb):
        one_line_error(console(port, "restart", "greet", key=pem(keydirs, "trusted")),
                       "which this board does not trust")
        assert console(port, "restart", "greet", key=pem(keydirs, "next")).returncode == 0


def test_the_console_fits_a_pico_heap_beside_the_demo(make_board):
    # --board rp2040 plays a 192 KB heap: the console's board side is a small dispatcher whose
    # commands load for one command and go again, so the demo keeps running beside it.
    vb = make_board(board="rp2040")
    end = time.monotonic() + 20
    while b"status: up" not in vb.output and time.monotonic() < end:  # the demo is running
        time.sleep(0.1)
    for _ in range(3):
        for words in (("servers",), ("graph",), ("mem",), ("info", "sensor"), ("crashes",)):
            out = outstack("console", "--port", vb.usb_port, *words, timeout=60)
            assert out.returncode == 0, (words, out.stderr, bytes(vb.output[-2000:]))
    assert b"MemoryError" not in vb.output and vb.state == "on"



def test_a_late_answer_is_never_taken_for_another_commands(make_board, keydirs):
    """Answers to earlier commands that come late (their asker gave up, or a peer sent them)
    are skipped by their tag: each command gets its own answer, on USB, UART1 and TCP."""
    from outstack import console as C
    from outstack.ota.transfer import frame
    from outstack.transport import open_port

    vb = _board(make_board, keydirs)
    stale = [b"@0badc0de servers", b"servers", b"@1 help"] * 10  # tagged by another, untagged
    for port in (vb.usb_port, vb.uart_port, f"127.0.0.1:{vb.tcp}"):
        if port == vb.usb_port:  # typed at the live prompt, then the console at once
            s = open_port(port)
            s.write(b"".join(C.RS + c + b"\r" for c in stale))
            s.close()
            ch = C.connect(port)
        elif port == vb.uart_port:  # at 115200: the answers take seconds to come
            line = SerialLine(port)
            line.write(b"".join(frame(C.CONSOLE, c) for c in stale))
            line.close()
            ch = C.connect(port, "link")
        else:  # on the connection the console then uses
            ch = Framed(TcpLine("127.0.0.1", vb.tcp))
            ch.line.write(b"".join(frame(C.CONSOLE, c) for c in stale))
        try:
            for _ in range(3):
                said = C.ask(ch, "info greet", timeout=30)
                assert said.get("name") == "greet" and "spec" in said, (port, said)
                said = C.ask(ch, "log greet", timeout=30)
                assert said.get("server") == "greet" and "records" in said, (port, said)
        finally:
            ch.close()
    assert vb.state == "on"
