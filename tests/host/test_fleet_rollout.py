"""Staged rollouts to ten virtual boards on a real mosquitto, driven through the CLI: a good
release goes out step by step; a release that fails its install halts at the canary; one that
crashes during the soak halts and is rolled back; a host killed mid-rollout resumes."""

import signal
import subprocess
import threading
import time

import pytest

from tests.conftest import BIN, need, number, one_line_error, outstack
from tests.host import fleet_kit as kit
from tests.host.fleet_kit import KEY, fleet_cmd, package

need(kit.broker_why(), "MQTT broker (mosquitto)")

BOARDS = 10


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    with kit.swarm(BOARDS, tmp_path_factory.mktemp("swarm")) as sw:
        yield sw


def versions(fleet):
    with fleet.cond:
        return [b.hb.get("versions", {}).get("app.sensor") for b in fleet.boards.values()]


CRASH_AT_START = """
_init = Sensor.init
def _broken(self, config, state):
    raise RuntimeError("release 2 cannot start")
Sensor.init = _broken
"""
CRASH_LATER = """
_cast = Sensor.handle_cast
def _late(self, msg, arg):
    if msg == "tick" and self.samples > 15:
        raise RuntimeError("release 3 fails after a while")
    return _cast(self, msg, arg)
Sensor.handle_cast = _late
"""


def test_a_good_release_goes_out_step_by_step(swarm, tmp_path):
    _, fleet, _, _ = swarm
    r = fleet_cmd(swarm, "rollout", package(tmp_path, "1.1.0", 1), "--canary", "1",
                  "--steps", "50,100", "--soak", "2", "--halt-on", "failed > 0 or crashed > 0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "step 0 (canary): sending update 1 to 1 boards" in r.stdout
    assert "step 1 (to 5 boards): sending update 1 to 4 boards" in r.stdout
    assert "step 2 (to 10 boards): sending update 1 to 5 boards" in r.stdout
    assert "rollout 1: done" in r.stdout
    fleet.wait(lambda: versions(fleet).count("1.1.0") == BOARDS, 60, "1.1.0 everywhere")
    st = fleet_cmd(swarm, "status")
    assert f"{BOARDS} healthy" in st.stdout and "done" in st.stdout, st.stdout
    ls = outstack("fleet", "ls", "--broker", f"127.0.0.1:{swarm[0].port}")
    assert f"{BOARDS}  seq 1 (app.sensor=1.1.0)" in ls.stdout, ls.stdout


def test_a_release_that_fails_halts_at_the_canary(swarm, tmp_path):
    _, fleet, _, _ = swarm
    r = fleet_cmd(swarm, "rollout", package(tmp_path, "2.0.0", 2, CRASH_AT_START),
                  "--canary", "2", "--steps", "50,100", "--soak", "2",
                  "--halt-on", "failed > 2% or crashed > 0")
    one_line_error(r, "rollout 2 halted", "canary: failed > 2% (100.0% of 2 boards)")
    st = fleet_cmd(swarm, "status", "2")
    assert "2 failed" in st.stdout and f"{BOARDS - 2} idle" in st.stdout, st.stdout
    time.sleep(1.5)  # a few heartbeats: nobody runs 2.0.0 (the canaries put 1.1.0 back)
    assert versions(fleet).count("1.1.0") == BOARDS, versions(fleet)


def test_a_crash_in_the_soak_halts_and_rolls_back(swarm, tmp_path):
    _, fleet, _, _ = swarm
    r = fleet_cmd(swarm, "rollout", package(tmp_path, "3.0.0", 3, CRASH_LATER),
                  "--canary", "2", "--steps", "100", "--soak", "8", "--halt-on", "crashed > 0")
    one_line_error(r, "rollout 3 halted and rolled back", "canary: crashed > 0")
    st = fleet_cmd(swarm, "status", "3")  # each board's state and detail, should one fail
    assert "rolled back 2 of 2 boards that took it" in r.stdout, (r.stdout, st.stdout)
    assert "2 rolledback" in st.stdout and f"{BOARDS - 2} idle" in st.stdout, st.stdout
    with fleet.cond:
        said = [b.result.get("said", "") for b in fleet.boards.values()]
    assert sum("rolled app.sensor back as update 4" in s for s in said) == 2, said


def test_a_host_killed_mid_rollout_resumes_where_it_stopped(swarm, tmp_path):
    broker, fleet, folder, _ = swarm
    pkg = package(tmp_path, "5.0.0", 5)
    proc = subprocess.Popen([str(BIN / "outstack"), "fleet", "rollout", pkg, "--canary", "1",
                             "--steps", "100", "--soak", "6", "--db", str(folder / "fleet.db"),
                             "--broker", f"127.0.0.1:{broker.port}", "--key", KEY],
                            cwd=kit.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 300
        while "soaking" not in fleet_cmd(swarm, "status", "4").stdout:
            assert proc.poll() is None and time.monotonic() < end, proc.stdout.read()
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert "soaking at step 0" in fleet_cmd(swarm, "status", "4").stdout
    r = fleet_cmd(swarm, "resume", "4")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sending update 5 to 9 boards" in r.stdout and "rollout 4: done" in r.stdout
    fleet.wait(lambda: versions(fleet).count("5.0.0") == BOARDS, 60, "5.0.0 everywhere")
    one_line_error(fleet_cmd(swarm, "resume", "4"), "done: nothing to resume")
    one_line_error(fleet_cmd(swarm, "halt", "4"), "not running")
    one_line_error(fleet_cmd(swarm, "status", "99"), "no rollout 99")
    one_line_error(fleet_cmd(swarm, "rollout", pkg, "--halt-on", "broken > x"), "halt rule")
    one_line_error(fleet_cmd(swarm, "rollout", pkg, "--steps", "50,20"), "--steps")


def test_an_offline_board_is_skipped_and_reported(swarm, tmp_path):
    _, fleet, _, boards = swarm
    away = boards.boards[0]
    bid = next(i for i, b in fleet.boards.items() if f"as outstack/{i}" in
               away.output.decode(errors="replace"))
    away.cut_power()
    fleet.wait(lambda: fleet.boards[bid].presence == "lost", 120, "the board's will")
    try:
        r = fleet_cmd(swarm, "rollout", package(tmp_path, "6.0.0", 6), "--canary", "1",
                      "--steps", "100", "--soak", "2")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "rollout 5: done, 1 boards skipped (offline)" in r.stdout, r.stdout
        st = fleet_cmd(swarm, "status", "5")
        assert "1 skipped" in st.stdout and f"{BOARDS - 1} healthy" in st.stdout, st.stdout
    finally:
        away.power_on()
    fleet.wait(lambda: fleet.boards[bid].online, 120, "the board back online")
    assert fleet.boards[bid].hb.get("seq") == 5  # it missed release 6; nothing else changed


def test_an_operators_halt_at_the_end_of_a_soak_stands(swarm, tmp_path):
    """An operator's halt (another process: `fleet halt`, the dashboard) that lands between the
    engine's last look during a soak and its move to the next step is not overwritten: the
    rollout stays halted at its canary and no other board gets the release."""
    from outstack.fleet import actions, rollout
    from outstack.fleet.store import Store

    _, fleet, folder, _ = swarm
    mine, theirs = Store(folder / "fleet.db"), Store(folder / "fleet.db")  # two connections
    try:
        rid = rollout.start(mine, fleet, package(tmp_path, "7.0.0", 7), 1, [100.0], 1.0,
                            "failed > 0")
        said, halted = [], []
        eng = rollout.Engine(mine, fleet, rid, KEY, say=said.append)
        look = eng.health

        def halt_as_the_soak_ends(r):  # the operator's halt arrives during the last look
            look(r)
            if r["state"] == "soaking" and time.time() >= r["soak_until"] and not halted:
                halted.append(actions.halt(theirs, rid, "racer (test)"))

        eng.health = halt_as_the_soak_ends
        assert eng.run() == "halted" and halted, said
        r = mine.rollout(rid)
        assert r["step"] == 0 and r["reason"] == "halted by the operator (racer (test))", dict(r)
        states = [t["state"] for t in mine.targets(rid)]
        assert states.count("installed") == 1 and states.count("idle") == BOARDS - 1, states
        assert not any("step 1" in s for s in said), said
    finally:
        mine.close()
        theirs.close()


def test_a_board_busy_with_another_install_is_asked_again(swarm, tmp_path):
    """A board installing another update (a push over its UART or TCP link) answers the
    rollout's offer `refused (busy)`; the engine asks again until it is free, so the board
    takes the release and the rollout is done, not halted by a board that merely had to wait."""
    from outstack.fleet import rollout
    from outstack.fleet.store import Store

    _, fleet, folder, boards = swarm
    canary = min(b for b, x in fleet.boards.items() if x.online)  # the engine's first choice
    vb = next(v for v in boards.boards if f"as outstack/{canary}" in
              v.output.decode(errors="replace"))
    # What an OTA push over UART1 or TCP sets while it installs (lib/outstack/ota/apply.py).
    assert number(vb, "system.installing = 'ota'; len(system.installing)") == 3
    store, run = Store(folder / "fleet.db"), None
    try:
        rid = rollout.start(store, fleet, package(tmp_path, "8.0.0", 8), 1, [100.0], 1.0,
                            "failed > 0")
        said, ended = [], []
        eng = rollout.Engine(store, fleet, rid, KEY, say=said.append)
        run = threading.Thread(target=lambda: ended.append(eng.run()), daemon=True)
        run.start()
        end = time.monotonic() + 180
        while not any("asking again in 3 s: refused (busy): ota is installing" in str(t["detail"])
                      for t in store.targets(rid) if t["board"] == canary):
            assert run.is_alive() and time.monotonic() < end, (ended, said, [
                dict(t) for t in store.targets(rid) if t["board"] == canary])
            time.sleep(0.1)
        assert number(vb, "system.installing = None; int(system.installing is None)") == 1
        run.join(600)
        assert ended == ["done"], (ended, said, [dict(t) for t in store.targets(rid)])
        states = {t["board"]: t["state"] for t in store.targets(rid)}
        assert states[canary] == "healthy" and list(states.values()).count("healthy") == BOARDS
    finally:
        number(vb, "system.installing = None; 0")  # whatever happened, the board is free again
        if run is not None:
            run.join(600)  # a failed test's engine ends (halted) before its state file closes
        store.close()
    fleet.wait(lambda: versions(fleet).count("8.0.0") == BOARDS, 60, "8.0.0 everywhere")
