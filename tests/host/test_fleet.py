"""The fleet server on virtual boards against a real mosquitto: birth, heartbeat and last
will; signed updates in chunks through the OTA installer; replays, unsigned packages and
malformed messages refused without harm (docs/FLEET.md)."""

import json
from pathlib import Path

import pytest

from outstack.fleet import push
from outstack.fleet.broker import Broker
from outstack.fleet.view import Fleet
from outstack.paths import ROOT
from tests.conftest import need, outstack, typed
from tests.host import fleet_kit as kit

need(kit.broker_why(), "MQTT broker (mosquitto)")

QUIET = {name: {"enabled": False} for name in ("processing", "storage", "status", "uplink")}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with Broker(folder=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture
def fleet(broker):
    with Fleet(broker.port) as f:
        yield f


def fleet_config(broker, **fleet):
    pub = json.loads((ROOT / "keys" / "ota-pub.json").read_text())
    settings = {"enabled": True, "ssid": "outstack", "key": "outstack-key", "port": broker.port,
                "period_ms": 500, "keys": [pub], "health_ms": 1000, **fleet}
    return json.dumps({"servers": {**QUIET, "sensor": {"period_ms": 200}, "fleet": settings}})


def online_board(make_board, broker, fleet, **settings):
    vb = make_board(files={"/config.json": fleet_config(broker, **settings)})
    bid = fleet.wait(lambda: _new_online(fleet, vb), 60, "a board's birth")
    return vb, bid


def _new_online(fleet, vb):
    text = vb.output.decode(errors="replace")
    for bid, b in fleet.boards.items():
        if b.online and f"as outstack/{bid}" in text:
            return bid
    return None


def package(tmp_path, version, seq, signed=True, extra=""):
    return Path(kit.package(tmp_path, version, seq, extra, signed)).read_bytes()


def test_board_announces_itself_beats_and_leaves_a_will(make_board, broker, fleet):
    vb, bid = online_board(make_board, broker, fleet)
    b = fleet.boards[bid]
    assert b.state["boot"] >= 1 and b.state["fw"]
    hb = fleet.wait(lambda: b.hb.get("n", 0) >= 3 and b.hb, 60, "three heartbeats")
    assert hb["reset"] == "PWRON" and hb["free"] > 0 and hb["restarts"] == 0
    assert {"versions", "up", "boot", "crashes", "seq", "running"} <= set(hb)
    vb.cut_power()  # the broker sees the link die and publishes the will
    fleet.wait(lambda: b.presence == "lost", 120, "the last will")


def test_signed_updates_install_and_replays_and_unsigned_are_refused(make_board, broker, fleet,
                                                                      tmp_path):
    vb, bid = online_board(make_board, broker, fleet)
    v11, v12 = package(tmp_path, "1.1.0", 1), package(tmp_path, "1.2.0", 2)
    got = push.send(fleet, bid, v11)
    assert got["ok"] and got["said"].startswith("installed update 1: sensor restarted"), got
    b = fleet.boards[bid]
    fleet.wait(lambda: b.hb.get("versions", {}).get("app.sensor") == "1.1.0", 60, "new version")
    got = push.send(fleet, bid, v11)  # the same signed release again
    assert not got["ok"] and "replay" in got["said"], got
    got = push.send(fleet, bid, package(tmp_path, "9.9.9", 7, signed=False))
    assert not got["ok"] and "not signed" in got["said"], got
    got = push.send(fleet, bid, v12)
    assert got["ok"] and got["said"].startswith("installed update 2"), got
    got = push.send(fleet, bid, v11)  # an older signed release
    assert not got["ok"] and "downgrade" in got["said"], got
    fleet.wait(lambda: b.hb.get("versions", {}).get("app.sensor") == "1.2.0", 60, "1.2.0 kept")
    assert b.hb["seq"] == 2


def test_malformed_messages_harm_neither_board_nor_host(make_board, broker, fleet, tmp_path):
    vb, bid = online_board(make_board, broker, fleet, max_packet=1024)
    b = fleet.boards[bid]
    junk = [b"", b"O", b"O{", b'O{"size": -1, "sha": "x"}', b'O{"size": 5, "sha": 7}',
            b"C\x00\x00\x00\x00hello", b"C", b"A", b"Z" * 3000, bytes(range(256)) * 8,
            b'O{"size": 99999999, "sha": "' + b"0" * 64 + b'"}', "ö".encode() * 50]
    for leaf in ("ota", "state", "hb", "result", "ack", "ota/x", ""):
        for j in junk:
            fleet.client.publish(f"outstack/{bid}/{leaf}".rstrip("/"), j)
    fleet.client.publish("outstack", b"\xff")
    fleet.client.publish("outstack/x/y/z", b"{}")
    # A transfer that lies: an offer whose bytes do not match its digest.
    fleet.client.publish(f"outstack/{bid}/ota", b'O{"size": 4, "sha": "' + b"1" * 64 + b'"}')
    fleet.client.publish(f"outstack/{bid}/ota", b"C\x00\x00\x00\x00abcd")
    fleet.wait(lambda: "does not match" in (b.result.get("said") or ""), 60, "digest refusal")
    n = b.hb.get("n", 0)
    fleet.wait(lambda: b.hb.get("n", 0) > n + 2, 60, "heartbeats after the junk")
    assert fleet.bad > 0 and b.hb["restarts"] == 0 and vb.state == "on"
    assert b.presence == "online"
    got = push.send(fleet, bid, package(tmp_path, "1.1.0", 1))  # still takes a good update
    assert got["ok"], got


def test_a_transfer_cut_by_a_power_cut_resumes_from_what_is_on_flash(make_board, broker, fleet,
                                                                     tmp_path):
    import os

    vb, bid = online_board(make_board, broker, fleet)
    data = package(tmp_path, "1.3.0", 3, extra="_PAD = %r\n" % os.urandom(6000).hex())
    assert len(data) > 3 * push.CHUNK, len(data)
    sha = __import__("hashlib").sha256(data).hexdigest()
    b = fleet.boards[bid]
    n = b.ack_n
    fleet.publish(bid, "ota", b"O" + json.dumps({"size": len(data), "sha": sha}).encode())
    for at in (0, push.CHUNK):  # two chunks: the board syncs them and says so at 4096
        fleet.publish(bid, "ota", b"C" + at.to_bytes(4, "big") + data[at:at + push.CHUNK])
    fleet.wait(lambda: b.ack_n > n and b.ack.get("have") == 2 * push.CHUNK, 60, "4096 on flash")
    vb.cut_power()
    fleet.wait(lambda: b.presence == "lost", 120, "the last will")
    vb.power_on()
    fleet.wait(lambda: b.online, 120, "the board back")
    n = b.ack_n
    fleet.publish(bid, "ota", b"O" + json.dumps({"size": len(data), "sha": sha}).encode())
    got = fleet.wait(lambda: b.ack_n > n and b.ack, 60, "the ack of the offer again")
    assert got.get("have") == 2 * push.CHUNK, got  # it goes on from there, not from 0
    res = push.send(fleet, bid, data)
    assert res["ok"] and res["said"].startswith("installed update 3"), res
    fleet.wait(lambda: b.hb.get("versions", {}).get("app.sensor") == "1.3.0", 60, "1.3.0")


def test_a_server_crash_reaches_the_host_as_its_report(make_board, broker, fleet):
    vb, bid = online_board(make_board, broker, fleet)
    b = fleet.boards[bid]
    typed(vb, kit.CRASH_ONCE, timeout=60)
    rep = fleet.wait(lambda: list(b.reports), 60, "the crash report")[0]
    assert rep["server"] == "sensor" and rep["error"].startswith("ZeroDivisionError"), rep
    assert rep["msg"] == "'tick'" and "Traceback" in rep["tb"] and rep["boot"] == b.hb["boot"]
    fleet.wait(lambda: b.hb.get("restarts") == 1, 60, "the restart in a heartbeat")
    vb.cut_power()
    fleet.wait(lambda: b.presence == "lost", 120, "the last will")
    vb.power_on()
    fleet.wait(lambda: b.online and b.hb.get("boot", 0) > rep["boot"], 120, "the next boot")
    n = b.hb["n"]
    fleet.wait(lambda: b.hb.get("n", 0) > n + 1, 60, "heartbeats after the boot")
    assert [r["n"] for r in b.reports] == [rep["n"]]  # said again after the boot, kept once


def test_fleet_cli_runs_boards_and_lists_them(broker, tmp_path):
    import subprocess
    import time

    from tests.conftest import BIN, one_line_error

    where = f"127.0.0.1:{broker.port}"
    sim = subprocess.Popen([str(BIN / "outstack"), "fleet", "sim", "2", "--broker", where,
                            "--period-ms", "1000", "--dir", str(tmp_path / "swarm")],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 180
        while True:
            out = outstack("fleet", "ls", "--broker", where)
            assert out.returncode == 0, out.stderr
            ours = [ln for ln in out.stdout.splitlines() if "online" in ln and "seq 0" in ln]
            if any(ln.split()[0] == "2" for ln in ours) or time.monotonic() > end:
                break
            time.sleep(1)
        assert any(ln.split()[0] == "2" for ln in ours), out.stdout
    finally:
        sim.terminate()
        sim.wait(60)
    assert "2 virtual boards on " + where in sim.stdout.read()
    one_line_error(outstack("fleet", "ls", "--broker", "nonsense"), "HOST:PORT")
    one_line_error(outstack("fleet", "ls", "--broker", "127.0.0.1:1"), "no MQTT broker")
    one_line_error(outstack("fleet", "sim", "0"), "at least 1")


def test_forged_reports_do_not_crash_the_host_tools(broker, fleet):
    last = {"state": b'{"state": 7}', "hb": b'{"versions": [1], "crashes": "x", "reset": 5, '
            b'"seq": {}}', "result": b'{"ok": "yes", "said": 7, "sha": []}', "ack": b'{"have": "x"}'}
    for leaf, body in last.items():
        for junk in (b"[]", b"\xff\xfe", b"{", body):  # the last one stays (retained)
            fleet.client.publish(f"outstack/forged/{leaf}", junk, retain=True)
    fleet.wait(lambda: "forged" in fleet.boards and fleet.boards["forged"].hb, 30, "forgeries")
    # subscribed now (the retained forgeries came): crash reports are not retained
    bad = fleet.bad
    for junk in (b"[]", b'{"n": "1", "server": "x"}', b'{"n": 1}', b'{"server": "x"}',
                 b'{"n": true, "server": "x"}'):
        fleet.client.publish("outstack/forged/crash", junk)
    fleet.client.publish("outstack/forged/crash", json.dumps(
        {"n": 7, "server": "x", "tb": "y" * 9000, "error": 5, "extra": "z"}).encode())
    fleet.wait(lambda: "forged" in fleet.boards and fleet.boards["forged"].reports, 30,
               "the one well-formed report")
    fleet.wait(lambda: fleet.bad >= bad + 5, 30, "the junk counted")
    rep = fleet.boards["forged"].reports[0]
    assert rep["n"] == 7 and len(rep["tb"]) == 2000 and "error" not in rep and "extra" not in rep
    out = outstack("fleet", "ls", "--broker", f"127.0.0.1:{broker.port}")
    assert out.returncode == 0 and "unknown" in out.stdout, out.stdout + out.stderr
    for leaf in ("state", "hb", "result", "ack"):
        fleet.client.publish(f"outstack/forged/{leaf}", b"", retain=True)  # clear them
