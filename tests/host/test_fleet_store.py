"""The rollout state file under the load a dashboard puts on it: a step's sixteen transfer
threads write through one Store while another connection reads the whole state twice a
second (as `fleet serve` does). Before the Store took turns on its connection and the file
went to WAL mode, SQLite answered "database is locked" after its 30 s wait here, and a resume
from the dashboard died with it."""

import threading
from concurrent.futures import ThreadPoolExecutor

from outstack.fleet import actions
from outstack.fleet.store import Store

BOARDS = 32


def test_many_threads_write_while_another_connection_reads(tmp_path):
    db = tmp_path / "fleet.db"
    mine, theirs = Store(db), Store(db)
    boards = [f"b{i:02d}" for i in range(BOARDS)]
    rid = mine.create(tmp_path / "x.pkg", "0" * 64, 1, "unix", ["app.x"], 1, [100.0], 1.0,
                      "failed > 0", boards)
    stop, seen, errors = threading.Event(), [], []

    def read():  # what the dashboard's snapshot reads, as fast as it can
        while not stop.is_set():
            try:
                seen.append(len(theirs.targets(rid)) + len(theirs.all()))
                actions.history(theirs, 30)
                stop.wait(0.01)  # a tick, then again (the dashboard waits 0.5 s)
            except Exception as e:  # noqa: BLE001 - the test reports whatever it was
                errors.append(f"reader: {e!r}")

    def send(bid):  # a transfer's writes: sending, then its result
        try:
            for k in range(20):
                if errors:
                    return  # one is enough to fail, and each costs SQLite's 30 s wait
                mine.target(rid, bid, state="sending", detail=str(k))
                mine.target(rid, bid, state="installed", detail="installed")
        except Exception as e:  # noqa: BLE001
            errors.append(f"{bid}: {e!r}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(send, boards))
        actions.log(mine, "tester", "halt", rid, "in the middle of it")
    finally:
        stop.set()
        reader.join()
    assert not errors, errors[:3]
    assert [t["state"] for t in mine.targets(rid)] == ["installed"] * BOARDS
    assert seen and actions.history(theirs, 1)[0]["said"] == "in the middle of it"
    mine.close()
    theirs.close()


def test_a_halt_from_another_connection_stands_against_a_stale_move(tmp_path):
    db = tmp_path / "fleet.db"
    engine, operator = Store(db), Store(db)
    rid = engine.create(tmp_path / "x.pkg", "0" * 64, 1, "unix", ["app.x"], 1, [100.0], 1.0,
                        "failed > 0", ["b1", "b2"])
    engine.target(rid, "b1", state="installed", step=0)
    assert engine.move(rid, ("running",), state="soaking", soak_until=0.0)
    actions.halt(operator, rid, "ann")  # lands after the engine's last look
    assert not engine.move(rid, ("soaking",), healthy=True, state="running", step=1)
    r = engine.rollout(rid)
    assert (r["state"], r["step"], r["reason"]) == ("halted", 0, "halted by the operator (ann)")
    assert engine.targets(rid, "installed")[0]["board"] == "b1"  # not marked healthy either
    r = actions.resume(operator, rid, "ann")
    assert r["state"] == "running"  # its soak had ended: the step is looked at again
    assert engine.move(rid, ("running",), state="soaking", soak_until=0.0)
    engine.close()
    operator.close()
