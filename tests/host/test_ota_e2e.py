"""Signed per-module updates end to end on a virtual board: packages made and signed by the
`outstack ota` CLI with real RSA keys, pushed over the UART1 pty and over loopback TCP,
verified and installed live while another server keeps answering; a bad update rolled back
with the reason; hostile packages refused with nothing changed."""

import json
import random
import time

import pytest

from outstack.ota.transfer import Sender, SerialLine, TcpLine
from tests.conftest import number, outstack, typed

GREET = """
from outstack.server import Server
class Greet(Server):
    def init(self, config, state):
        self.version = "%s"
        if self.version == "bad":
            raise RuntimeError("this version dies on start")
    def handle_call(self, msg, arg):
        return self.version
"""
PINGER = """
import time
from outstack.server import Server
class Pinger(Server):
    def init(self, config, state):
        self.gap = 0
    async def run(self):
        c = self.client("other")
        last = time.ticks_ms()
        while True:
            await c.call("x")
            now = time.ticks_ms()
            self.gap = max(self.gap, time.ticks_diff(now, last))
            last = now
            await __import__("asyncio").sleep_ms(2)
    def handle_call(self, msg, arg):
        return self.gap
"""
OTHER = """
from outstack.server import Server
class Other(Server):
    def handle_call(self, msg, arg):
        return 1
"""
MAIN = """
from outstack.system import System
import json
with open("/ota.json") as f:
    ota = json.load(f)
TABLE = {
    "ota": {"factory": "outstack.ota.service:OtaServer", "essential": True, "rights": ("ota",),
            "config": ota},
    "greet": {"factory": "app.greet:Greet"},
    "other": {"factory": "app.other:Other", "priority": 2},
    "pinger": {"factory": "app.pinger:Pinger", "grants": ("other",)},
}
System(TABLE, config_path="/none.json").run_forever()
"""


@pytest.fixture
def keys(tmp_path):
    out = outstack("ota", "keygen", "--out", str(tmp_path / "keys"))
    assert out.returncode == 0, out.stderr
    other = outstack("ota", "keygen", "--out", str(tmp_path / "other"))
    assert other.returncode == 0, other.stderr
    return tmp_path / "keys", tmp_path / "other"


def _package(tmp_path, key, version, seq, board="unix", name="greet"):
    src = tmp_path / f"{name}-{version}.py"
    src.write_text(GREET % version)
    out = tmp_path / f"{name}-{version}-{seq}.pkg"
    r = outstack("ota", "pack", f"{src}=app/{name}.py", "--key", str(key / "ota-key.pem"),
                 "--board", board, "--seq", str(seq), "--out", str(out), "--source")
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


def _board(make_board, keys, tcp_port, timeout=10, **board):
    """A board running MAIN, up to its live prompt (board: make_board's options, engine...)."""
    pub = json.loads((keys[0] / "ota-pub.json").read_text())
    ota = {"keys": [pub], "tcp_port": tcp_port}
    vb = make_board(files={"/main.py": MAIN, "/ota.json": json.dumps(ota),
                           "/app/greet.py": GREET % "v1", "/app/pinger.py": PINGER,
                           "/app/other.py": OTHER}, **board)
    end = time.monotonic() + timeout
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    return vb


def _push(line, data):
    try:
        return Sender(line).push(data)
    finally:
        line.close()


def test_signed_update_installs_live_and_bad_one_rolls_back(make_board, keys, tmp_path):
    port = random.randint(20000, 40000)
    vb = _board(make_board, keys, port)
    assert typed(vb, "await call('greet', 'v')") == "'v1'"
    before = number(vb, "await call('pinger', 'gap')")
    said = _push(SerialLine(vb.uart_port), _package(tmp_path, keys[0], "v2", 1))
    assert said.startswith("installed update 1: greet restarted, healthy"), said
    assert typed(vb, "await call('greet', 'v')") == "'v2'"
    gap = number(vb, "await call('pinger', 'gap')")
    print(f"UART update: longest gap in another server's replies {gap} ms (before: {before} ms)")
    assert gap < 3000  # shorter than the install's own health check: it kept serving

    said = _push(SerialLine(vb.uart_port), _package(tmp_path, keys[0], "bad", 2))
    print(f"bad update: {said}")
    assert said.startswith("rolled back update 2:") and "this version dies on start" in said, said
    assert typed(vb, "await call('greet', 'v')") == "'v2'"

    said = _push(TcpLine("127.0.0.1", port), _package(tmp_path, keys[0], "v3", 3))
    assert said.startswith("installed update 3"), said
    assert typed(vb, "await call('greet', 'v')") == "'v3'"
    gap = number(vb, "await call('pinger', 'gap')")
    print(f"Wi-Fi (TCP) update: longest gap in another server's replies {gap} ms")


def test_hostile_packages_are_refused_and_change_nothing(make_board, keys, tmp_path):
    vb = _board(make_board, keys, 0)
    good = _package(tmp_path, keys[0], "v2", 5)
    assert _push(SerialLine(vb.uart_port), good).startswith("installed update 5")
    cases = {
        "wrong key": _package(tmp_path, keys[1], "evil", 6),
        "replayed update": good,
        "downgrade": _package(tmp_path, keys[0], "old", 4),
        "wrong board": _package(tmp_path, keys[0], "v9", 7, board="rp2040"),
    }
    flipped = bytearray(_package(tmp_path, keys[0], "v8", 8))
    flipped[-5] ^= 0x01  # a bit in the last module's bytes
    cases["flipped bit in a module"] = bytes(flipped)
    manifest = bytearray(_package(tmp_path, keys[0], "v8", 9))
    manifest[40] ^= 0x01  # a bit inside the manifest
    cases["flipped bit in the manifest"] = bytes(manifest)
    cases["truncated package"] = _package(tmp_path, keys[0], "v8", 10)[:-20]
    cases["random bytes"] = random.Random(9).randbytes(3000)
    for what, data in cases.items():
        said = _push(SerialLine(vb.uart_port), data)
        print(f"{what}: {said}")
        assert said.startswith("refused"), (what, said)
        assert typed(vb, "await call('greet', 'v')") == "'v2'", what
    status = typed(vb, "await call('ota', 'status')")
    assert "'running': 5" in status and "'accepted': 5" in status, status


def test_cli_push_shows_progress_and_what_the_board_installed(make_board, keys, tmp_path):
    vb = _board(make_board, keys, 0)
    pkg = tmp_path / "v2.pkg"
    pkg.write_bytes(_package(tmp_path, keys[0], "v2", 1))
    r = outstack("ota", "push", str(pkg), "--port", vb.uart_port)
    assert r.returncode == 0, r.stderr
    assert "100%" in r.stdout and "board: installed update 1: greet restarted, healthy" in r.stdout
    again = outstack("ota", "push", str(pkg), "--port", vb.uart_port)
    assert again.returncode == 1 and "replay" in again.stderr, again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    for bad, needle in ((["--port", vb.uart_port, "--host", "1.2.3.4:5"], "say where the board is"),
                        (["--host", "nohostport"], "IP:PORT"),
                        (["--port", str(tmp_path / "nodev")], "cannot open")):
        r = outstack("ota", "push", str(pkg), *bad)
        assert r.returncode == 1 and needle in r.stderr, (bad, r.stderr)
    r = outstack("ota", "push", str(tmp_path / "missing.pkg"), "--port", vb.uart_port)
    assert r.returncode == 1 and "cannot read package" in r.stderr
    rb = outstack("ota", "rollback", "app.greet", "--key", str(keys[0] / "ota-key.pem"),
                  "--board", "unix", "--seq", "2", "--port", vb.uart_port)
    assert rb.returncode == 0 and "rolled app.greet back as update 2" in rb.stdout, rb.stdout + rb.stderr
    assert typed(vb, "await call('greet', 'v')") == "'v1'"
    forged = outstack("ota", "rollback", "app.greet", "--key", str(keys[1] / "ota-key.pem"),
                      "--board", "unix", "--seq", "3", "--port", vb.uart_port)
    assert forged.returncode == 1 and "does not trust" in forged.stderr, forged.stderr
    st = outstack("ota", "status", "--port", vb.uart_port)
    assert st.returncode == 0, st.stderr
    assert "running update 2 (good), previous 1, last accepted 2" in st.stdout, st.stdout
