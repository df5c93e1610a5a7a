"""A fleet riding out trouble, on four virtual boards and a real mosquitto: the broker stopped
mid-rollout (the boards reconnect by themselves with back-off, the host's rollout picks up
where it was and finishes), and a board away at its step catches up when it comes back while
the rollout still runs (docs/FLEET.md)."""

import json
import socket
import subprocess
import threading
import time

import pytest

from outstack.fleet import sim as S
from outstack.fleet.store import Store
from outstack.paths import ROOT
from tests.conftest import BIN, need, outstack, typed
from tests.host import fleet_kit as kit
from tests.host.fleet_kit import KEY, package

need(kit.broker_why(), "MQTT broker (mosquitto)")

BOARDS = 4


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with kit.swarm(BOARDS, tmp_path_factory.mktemp("outage"), retry_ms=500,
                   retry_max_ms=2000) as sw:
        yield sw


def start_rollout(swarm, pkg, *args):
    broker, _, folder, _ = swarm
    return subprocess.Popen([str(BIN / "outstack"), "fleet", "rollout", pkg, *args,
                             "--db", str(folder / "fleet.db"), "--broker",
                             f"127.0.0.1:{broker.port}", "--key", KEY],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def until(what, pred, proc, timeout=300):
    end = time.monotonic() + timeout
    while not pred():
        if proc.poll() is not None:
            pytest.fail(f"the rollout ended before {what}: {proc.stdout.read()}")
        assert time.monotonic() < end, f"{what} did not happen within {timeout} s"
        time.sleep(0.3)


def rollout_state(folder, rid=None):
    """((state, step), {board: target state}) of rollout rid (None: the latest one)."""
    store = Store(folder / "fleet.db")
    try:
        r = store.rollout(rid)
        return ((r["state"], r["step"]), {t["board"]: t["state"] for t in
                                          store.targets(r["id"])}) if r else ((None, None), {})
    finally:
        store.close()


def versions(fleet):
    with fleet.cond:
        return {i: b.hb.get("versions", {}).get("app.sensor") for i, b in fleet.boards.items()}


def console(vb):
    return vb.output.decode(errors="replace")


def test_a_rollout_rides_out_a_broker_outage(swarm, tmp_path):
    broker, fleet, folder, boards = swarm
    before = [console(vb).count("fleet: connected to") for vb in boards.boards]
    proc = start_rollout(swarm, package(tmp_path, "1.1.0", 1), "--canary", "1",
                         "--steps", "50,100", "--soak", "3",
                         "--halt-on", "failed > 0 or crashed > 0")
    try:
        until("the canary's soak", lambda: rollout_state(folder, 1)[0] == ("soaking", 0), proc)
        broker.stop()  # mid-rollout: the canary soaks, three boards still to go
        gone = "fleet: broker 127.0.0.1:%d unreachable" % broker.port
        until("every board failing to reconnect", lambda: all(
            gone in console(vb) for vb in boards.boards), proc)
        fleet.wait(lambda: not fleet.connected, 60, "the host seeing the broker gone")
        with fleet.cond:
            for b in fleet.boards.values():
                b.state = {}  # from here, "online" means a birth after the outage
        time.sleep(3)  # the outage: every board fails to reconnect (and backs off) meanwhile
        assert proc.poll() is None, proc.stdout.read()  # the host waits out the outage
        broker.start()
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "rollout 1: done" in out, out
    fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) == BOARDS, 120,
               "every board online again")
    fleet.wait(lambda: list(versions(fleet).values()).count("1.1.0") == BOARDS, 120,
               "1.1.0 on every board")
    state, targets = rollout_state(folder, 1)
    assert state == ("done", 2) and set(targets.values()) == {"healthy"}, (state, targets)
    for vb, n in zip(boards.boards, before):
        text = console(vb)
        assert text.count("fleet: connected to") > n, text[-2000:]  # back by itself


def test_a_board_away_at_its_step_catches_up_when_it_returns(swarm, tmp_path):
    _, fleet, folder, boards = swarm
    away = boards.boards[0]
    bid = next(i for i in fleet.boards if f"as outstack/{i}" in console(away))
    away.cut_power()
    fleet.wait(lambda: fleet.boards[bid].presence == "lost", 120, "the board's will")
    proc = start_rollout(swarm, package(tmp_path, "2.0.0", 2), "--canary", str(BOARDS),
                         "--steps", "100", "--soak", "3600",
                         "--halt-on", "failed > 0 or crashed > 0")
    try:
        until("the board skipped", lambda: rollout_state(folder)[1].get(bid) == "skipped"
              and rollout_state(folder)[0] == ("soaking", 0), proc)
        away.power_on()
        until("the board caught up", lambda: rollout_state(folder)[1].get(bid) in
              ("installed", "healthy"), proc)
        fleet.wait(lambda: versions(fleet)[bid] == "2.0.0", 120, "2.0.0 on the returned board")
        state, targets = rollout_state(folder)
        assert state == ("soaking", 0), state  # still running: its soak started again
        assert list(targets.values()).count("installed") == BOARDS, targets
        r = outstack("fleet", "halt", "--db", str(folder / "fleet.db"))
        assert r.returncode == 0, r.stderr
        out, _ = proc.communicate(timeout=120)
        assert "catching up 1 boards back online" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(versions(fleet).values()).count("2.0.0") == BOARDS


def test_a_broker_that_never_answers_does_not_hold_up_the_board(make_board):
    # A listener that accepts and then says nothing: the board's MQTT connect waits for its
    # CONNACK through asyncio (connect_ms set to ten minutes here), so the console and the
    # other servers keep answering meanwhile; a blocking connect would hold them all.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.5)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    pub = json.loads((ROOT / "keys" / "ota-pub.json").read_text())
    cfg = S.fleet_config(srv.getsockname()[1], [pub], connect_ms=600000)
    try:
        vb = make_board(files={"/config.json": json.dumps(cfg)})
        end = time.monotonic() + 120
        while not held:
            assert time.monotonic() < end, "the board never dialed the broker"
            time.sleep(0.1)
        first = held[0].recv(256)  # its CONNECT came out; no CONNACK goes back
        assert first[:1] == b"\x10" and b"MQTT" in first, first
        stats = typed(vb, "await call('fleet', 'stats')", timeout=120)
        assert "'connected': False" in stats and "'connects': 0" in stats, stats
        assert typed(vb, "6 * 7", timeout=120) == "42"
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        srv.close()
