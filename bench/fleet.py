"""The fleet at scale: N virtual boards (each a real MicroPython unix-port interpreter with
its own flash image) on a local mosquitto. Prints the time until all are online, the host RAM
per virtual board (interpreter RSS, and the host process's share), heartbeat messages and
bytes per board through the broker, the board-side heap the fleet server holds, and the time
to move one signed update to K boards (chunks, acks, install, result).

    .venv/bin/python bench/fleet.py [--boards 200] [--update 10] [--seconds 30] [--short]

With --bad-release PCT and/or --broker-outage S it skips those figures: after a good rollout
to every board, --bad-release rolls out a release whose sensor server raises some seconds
after start on the boards whose id falls in the PCT % bucket (canary, steps 5,25,50,100, halt
on `failed > 2% or crashed > 0`) and prints how many boards ever ran it (heartbeats and
results), where the rollout halted and why, and whether every one of them is back on the good
version; --broker-outage stops mosquitto S seconds during a good rollout and prints the time
until every board is back online and how the rollout ended.

    .venv/bin/python bench/fleet.py --boards 200 --bad-release 30 --canary 10
    .venv/bin/python bench/fleet.py --boards 200 --broker-outage 30
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
    ap.add_argument("--bad-release", type=float, metavar="PCT",
                    help="roll out a release that crashes a server on PCT %% of the boards")
    ap.add_argument("--broker-outage", type=float, metavar="S",
                    help="stop the broker S seconds in the middle of a rollout")
    ap.add_argument("--canary", type=int, help="canary boards (default: 5 %% of them, >= 1)")
    ap.add_argument("--crash-after", type=int, default=5,
                    help="sensor ticks (1 s) before the bad release's server raises")
    a = ap.parse_args()
    trouble = a.bad_release is not None or a.broker_outage is not None
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
                             base={"servers": {"sensor": {"period_ms": 1000}}},
                             **({"health_ms": 1000} if trouble else {}))
        tpl = S.template(ROOT / "firmware", tmp, cfg)
        t0 = time.monotonic()
        swarm = S.Swarm(a.boards, tmp, tpl).start()
        try:
            started = time.monotonic() - t0
            fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) >= a.boards,
                       120 + 2 * a.boards, "every board online")
            online = time.monotonic() - t0
            print(f"{a.boards} boards: started in {started:.1f} s, all online after {online:.1f} s")
            if trouble:
                store = rollout(fleet, a, tmp)
                if a.bad_release is not None:
                    bad_release(fleet, a, tmp, store)
                if a.broker_outage is not None:
                    outage(fleet, a, tmp, store, broker)
                return
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
    return store


BAD = """
_BAD = int(_hal.unique_id()[-4:], 16) % 100 < {pct}
_cast = Sensor.handle_cast
def _late(self, msg, arg):
    if _BAD and msg == "tick" and self.samples > {after}:
        raise RuntimeError("release {seq} fails after a while")
    return _cast(self, msg, arg)
Sensor.handle_cast = _late
"""


def in_bucket(bid: str, pct: float) -> bool:
    return int(bid[-4:], 16) % 100 < pct  # the same test the bad release makes on the board


def next_seq(store) -> int:
    return max(max(r["seq"], r["rollback_seq"] or 0) for r in store.all()) + 1


def sensor_versions(fleet) -> dict:
    with fleet.cond:
        return {i: b.hb.get("versions", {}).get("app.sensor") for i, b in fleet.boards.items()}


def bad_release(fleet, a, tmp, store):
    import subprocess

    from outstack.fleet import rollout as RO

    seq = next_seq(store)
    good = sensor_versions(fleet)
    src = tmp / "sensor-bad.py"
    src.write_text('__version__ = "6.6.6"\nfrom outstack import hal as _hal\n'
                   + (ROOT / "firmware/app/sensor.py").read_text()
                   + BAD.format(pct=a.bad_release, after=a.crash_after, seq=seq))
    pkg = tmp / "bad.pkg"
    subprocess.run([str(Path(sys.executable).parent / "outstack"), "ota", "pack",
                    f"{src}=app/sensor.py", "--key", str(ROOT / "keys/ota-key.pem"), "--board",
                    "unix", "--seq", str(seq), "--out", str(pkg)], check=True, cwd=ROOT,
                   capture_output=True)
    sha = __import__("hashlib").sha256(pkg.read_bytes()).hexdigest()
    bucket = sum(in_bucket(b, a.bad_release) for b in fleet.boards)
    canary = a.canary or max(1, a.boards // 20)
    steps = [5.0, 25.0, 50.0, 100.0]
    rule = "failed > 2% or crashed > 0"
    with fleet.cond:
        for b in fleet.boards.values():
            b.ran.discard(("app.sensor", "6.6.6"))
    t0 = time.monotonic()
    rid = RO.start(store, fleet, pkg, canary, steps, max(a.soak, a.crash_after * 3.0), rule)
    said = []
    state = RO.Engine(store, fleet, rid, str(ROOT / "keys/ota-key.pem"), say=said.append).run()
    took = time.monotonic() - t0
    r = store.rollout(rid)
    sent = [t["board"] for t in store.targets(rid) if t["step"] is not None]
    with fleet.cond:
        ran = sorted(i for i, b in fleet.boards.items() if ("app.sensor", "6.6.6") in b.ran
                     or (b.result.get("sha") == sha and b.result.get("ok")))
    print(f"bad release (update {seq}: the sensor server raises after {a.crash_after} ticks on "
          f"{a.bad_release:g} % of boards; {bucket} of {len(fleet.boards)} are in that bucket): "
          f"canary {canary}, steps 5,25,50,100, halt on '{rule}'")
    print(f"  rollout {state} after {took:.1f} s: {r['reason'] or 'no breach'}")
    for line in said:
        if "sending" in line or "rolled back" in line:
            print("  " + line)
    print(f"  boards sent the bad release: {len(sent)}; boards that ever ran it: {len(ran)} "
          f"(goal: <= canary {canary} + boards in flight)")
    end = time.monotonic() + 120
    while True:
        now = sensor_versions(fleet)
        back = [i for i in ran if now.get(i) == good.get(i)]
        if len(back) == len(ran) or time.monotonic() > end:
            break
        time.sleep(0.5)
    print(f"  back on the good version (heartbeats, app.sensor as before): {len(back)} of "
          f"{len(ran)}" + ("" if len(back) == len(ran) else "; not back: " + ", ".join(
              f"{i} runs {now.get(i)} (was {good.get(i)})" for i in sorted(set(ran) - set(back)))))


def outage(fleet, a, tmp, store, broker):
    from outstack.fleet import rollout as RO

    seq = next_seq(store)
    pkg = tmp / "after-outage.pkg"
    pkg.write_bytes(package(tmp, seq))
    canary = a.canary or max(1, a.boards // 20)
    steps = [5.0, 25.0, 50.0, 100.0] if a.boards >= 20 else [50.0, 100.0]
    rid = RO.start(store, fleet, pkg, canary, steps, a.soak, "failed > 2% or crashed > 0")
    eng = RO.Engine(store, fleet, rid, str(ROOT / "keys/ota-key.pem"), say=lambda t: None)
    done = {}
    t0 = time.monotonic()
    th = threading.Thread(target=lambda: done.__setitem__("state", eng.run()))
    th.start()
    while not store.targets(rid, "installed", "healthy") and th.is_alive():
        time.sleep(0.2)  # mid-rollout: the canary has taken it
    r = store.rollout(rid)
    broker.stop()
    stopped = time.monotonic()
    time.sleep(a.broker_outage)
    with fleet.cond:
        for b in fleet.boards.values():
            b.state = {}  # online again means a birth after the outage
    broker.start()
    back = time.monotonic()
    fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) >= a.boards,
               120 + 2 * a.boards, "every board back online")
    again = time.monotonic() - back
    th.join()
    r2 = store.rollout(rid)
    healthy = len(store.targets(rid, "healthy"))
    print(f"broker outage of {back - stopped:.1f} s during rollout {rid} ({r['state']} at step "
          f"{r['step']}): every board online again {again:.1f} s after the broker returned "
          f"(host reconnects: {fleet.outages})")
    print(f"  rollout {done.get('state')} in {time.monotonic() - t0:.1f} s in all "
          f"(outage included): {healthy} of {a.boards} boards healthy on update {seq}"
          + (f"; {r2['reason']}" if r2["reason"] else ""))


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
