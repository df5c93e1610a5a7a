"""The fleet at scale: N virtual boards (each a real MicroPython unix-port interpreter with
its own flash image) on a local mosquitto. Prints the time until all are online, the host RAM
per virtual board (interpreter RSS, and the host process's share), heartbeat messages and
bytes per board through the broker, the board-side heap the fleet server holds, and the time
to move one signed update to K boards (chunks, acks, install, result).

    .venv/bin/python bench/fleet.py [--boards 200] [--update 10] [--seconds 30] [--short]
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack.fleet import push  # noqa: E402
from outstack.fleet import sim as S  # noqa: E402
from outstack.fleet.broker import Broker  # noqa: E402
from outstack.fleet.view import Fleet  # noqa: E402
from outstack.paths import ROOT  # noqa: E402


def rss_kib(pid) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def package(tmp: Path, seq: int) -> bytes:
    import subprocess

    src = tmp / "sensor.py"
    src.write_text('__version__ = "1.1.0"\n' + (ROOT / "firmware/app/sensor.py").read_text())
    out = tmp / "sensor.pkg"
    subprocess.run([str(Path(sys.executable).parent / "outstack"), "ota", "pack",
                    f"{src}=app/sensor.py", "--key", str(ROOT / "keys/ota-key.pem"),
                    "--board", "unix", "--seq", str(seq), "--out", str(out)], check=True,
                   cwd=ROOT, capture_output=True)
    return out.read_bytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boards", type=int, default=200)
    ap.add_argument("--update", type=int, default=10, help="boards to send an update to")
    ap.add_argument("--seconds", type=float, default=30, help="heartbeat window")
    ap.add_argument("--period-ms", type=int, default=5000)
    ap.add_argument("--soak", type=float, default=5.0, help="rollout soak per step, seconds")
    ap.add_argument("--short", action="store_true", help="3 boards, 1 update, 5 s (CI)")
    a = ap.parse_args()
    if a.short:
        a.boards, a.update, a.seconds, a.period_ms, a.soak = 3, 1, 5, 1000, 1.0
    if not (ROOT / "keys/ota-pub.json").exists():
        from outstack.ota import keys

        keys.write_keys(keys.generate(), ROOT / "keys")
    pub = json.loads((ROOT / "keys/ota-pub.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="outstack-fleet-bench-"))
    host_before = rss_kib(os.getpid())
    with Broker(folder=tmp / "broker") as broker, Fleet(broker.port) as fleet:
        cfg = S.fleet_config(broker.port, [pub], period_ms=a.period_ms,
                             base={"servers": {"sensor": {"period_ms": 1000}}})
        tpl = S.template(ROOT / "firmware", tmp, cfg)
        t0 = time.monotonic()
        swarm = S.Swarm(a.boards, tmp, tpl).start()
        try:
            started = time.monotonic() - t0
            fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) >= a.boards,
                       120 + 2 * a.boards, "every board online")
            online = time.monotonic() - t0
            print(f"{a.boards} boards: started in {started:.1f} s, all online after {online:.1f} s")
            rss = [rss_kib(vb.pid) for vb in swarm.boards if vb.pid]
            host = rss_kib(os.getpid()) - host_before
            print(f"host RAM per virtual board: interpreter RSS {sum(rss) / len(rss) / 1024:.1f} MiB"
                  f" (max {max(rss) / 1024:.1f}), host process share "
                  f"{host / a.boards / 1024:.2f} MiB; threads {threading.active_count()}")
            beat_window(fleet, a)
            free = [b.hb.get("free", 0) for b in fleet.boards.values() if b.hb]
            print(f"board heap free with the fleet server connected: {min(free)} .. {max(free)} "
                  f"bytes of {swarm.boards[0].heap}")
            update(fleet, a, tmp)
            rollout(fleet, a, tmp)
            board_ram(fleet, a, tmp, cfg)
        finally:
            swarm.stop()


def beat_window(fleet, a):
    with fleet.cond:
        before = {b.id: (b.got_msgs, b.got_bytes) for b in fleet.boards.values()}
    time.sleep(a.seconds)
    with fleet.cond:
        msgs = sum(b.got_msgs - before.get(b.id, (0, 0))[0] for b in fleet.boards.values())
        size = sum(b.got_bytes - before.get(b.id, (0, 0))[1] for b in fleet.boards.values())
    n = len(before)
    print(f"heartbeats: {msgs / n / a.seconds * 60:.1f} messages and {size / n / a.seconds * 60:.0f} "
          f"bytes per board per minute through the broker (period {a.period_ms} ms)")


def update(fleet, a, tmp):
    data = package(tmp, 1)
    ids = sorted(fleet.boards)[: a.update]
    with fleet.cond:
        before = {i: (fleet.boards[i].sent_msgs, fleet.boards[i].sent_bytes,
                      fleet.boards[i].got_msgs) for i in ids}
    results = {}
    t0 = time.monotonic()
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, push.send(fleet, i, data)))
               for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - t0
    ok = sum(1 for r in results.values() if r.get("ok"))
    with fleet.cond:
        sent = sum(fleet.boards[i].sent_msgs - before[i][0] for i in ids) / len(ids)
        size = sum(fleet.boards[i].sent_bytes - before[i][1] for i in ids) / len(ids)
    print(f"update of {len(data)} bytes to {len(ids)} boards at once: {ok} installed in "
          f"{took:.1f} s; per board {sent:.0f} messages, {size:.0f} bytes sent to it")


def rollout(fleet, a, tmp):
    from outstack.fleet import rollout as RO
    from outstack.fleet.store import Store

    pkg = tmp / "release2.pkg"
    pkg.write_bytes(package(tmp, 2))
    store = Store(tmp / "fleet.db")
    marks = [(time.monotonic(), "start")]
    steps = [5.0, 25.0, 50.0, 100.0] if a.boards >= 20 else [100.0]
    rid = RO.start(store, fleet, pkg, 1, steps, a.soak, "failed > 2% or crashed > 0")
    eng = RO.Engine(store, fleet, rid, str(ROOT / "keys/ota-key.pem"),
                    say=lambda t: marks.append((time.monotonic(), t)))
    state = eng.run()
    marks.append((time.monotonic(), state))
    print(f"rollout to {a.boards} boards (canary 1, steps {','.join('%g' % s for s in steps)}, "
          f"soak {a.soak:g} s): {state} in {marks[-1][0] - marks[0][0]:.1f} s")
    for (t0, what), (t1, _) in zip(marks[1:], marks[2:]):
        if "sending" in what:
            print(f"  {what.split(': ')[0]}: {t1 - t0:.1f} s ({what.split('sending ')[1]}, "
                  f"then its soak)")


def board_ram(fleet, a, tmp, cfg):
    # The fleet server's share of the board's heap: free heap (console `mem`, after a
    # collect) on a board with it connected, and on the same image with it switched off.
    import subprocess

    from outstack.sim import VirtualBoard

    off = json.loads(json.dumps(cfg))
    off["servers"]["fleet"]["enabled"] = False
    free = {}
    for name, c in (("on", cfg), ("off", off)):
        img = S.template(ROOT / "firmware", tmp / f"ram-{name}", c)
        with VirtualBoard(img).start() as vb:
            vb.wait_for("booted")
            time.sleep(3)  # joined and connected (fleet on), servers settled
            out = subprocess.run([str(Path(sys.executable).parent / "outstack"), "console",
                                  "--port", vb.uart_port, "--via", "link", "--json", "mem"],
                                 capture_output=True, text=True, timeout=120, cwd=ROOT)
            free[name] = json.loads(out.stdout)["free"] if out.returncode == 0 else None
    if None in free.values():
        print(f"board heap: console did not answer ({free})")
        return
    print(f"board heap held by the fleet server (connected, umqtt loaded): "
          f"{free['off'] - free['on']} bytes ({free['on']} free with it, {free['off']} without)")


if __name__ == "__main__":
    main()
