"""The fleet dashboard with N boards: time to first render in headless chromium (Debian's,
through selenium), the size of the first snapshot and of each update message on the event
stream, and how long the page takes to redraw after one update.

Boards are real virtual boards (each a MicroPython interpreter, as `fleet sim`), or with
--synthetic one MQTT client that publishes, for N board ids, what a board publishes (birth
and a heartbeat every --period-ms): the page and the server see the same messages, at a
fraction of the CPU.

    .venv/bin/python bench/dashboard.py [--boards 200] [--synthetic] [--seconds 20] [--short]

--short (the test suite's run): 5 synthetic boards, 2 seconds.
"""

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack.fleet import sim as S  # noqa: E402
from outstack.fleet.broker import Broker  # noqa: E402
from outstack.fleet.view import Fleet  # noqa: E402
from outstack.paths import ROOT  # noqa: E402

TOKEN = "bench-token"
BIN = Path(sys.executable).parent


def synthetic(port, n, period_ms, stop):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-synthetic")
    c.connect("127.0.0.1", port)
    c.loop_start()
    ids = [f"{0x5100000 + i:016x}" for i in range(n)]
    for i, bid in enumerate(ids):
        c.publish(f"outstack/{bid}/state", json.dumps({"state": "online", "boot": 1,
                                                       "fw": "0.1.0", "seq": 0}), retain=True)
    k = 0
    while not stop.is_set():
        k += 1
        for i, bid in enumerate(ids):
            hb = {"n": k, "fw": "0.1.0", "seq": 0, "running": "a", "versions": {"app.sensor":
                  "1.0.0"}, "up": k * period_ms // 1000, "boot": 1, "reset": "PWRON",
                  "restarts": 0, "crashes": 0, "free": 250000 - (k * 37 + i) % 4000, "ota": ""}
            c.publish(f"outstack/{bid}/hb", json.dumps(hb), retain=True)
        stop.wait(period_ms / 1000)
    c.loop_stop()
    c.disconnect()


def real(port, n, period_ms, folder):
    pub = json.loads((ROOT / "keys" / "ota-pub.json").read_text())
    cfg = S.fleet_config(port, [pub], period_ms=period_ms)
    return S.Swarm(n, folder, S.template(ROOT / "firmware", folder, cfg)).start()


def listen(port, sizes, snap):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", "/events", headers={"Authorization": f"Bearer {TOKEN}"})
    event = None
    for line in c.getresponse():
        if line.startswith(b"event: "):
            event = line[7:].strip()
        elif line.startswith(b"data: "):
            (snap if event == b"snap" else sizes).append(len(line) - 7)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=200)
    ap.add_argument("--synthetic", action="store_true")
    ap.add_argument("--period-ms", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--short", action="store_true", help="5 synthetic boards for 2 s")
    a = ap.parse_args()
    if a.short:
        a.boards, a.synthetic, a.seconds, a.period_ms = 5, True, 2, 500
    folder = Path(tempfile.mkdtemp(prefix="outstack-bench-dash-"))
    stop = threading.Event()
    with Broker(folder=folder / "broker") as broker, Fleet(broker.port) as fleet:
        swarm = None
        if a.synthetic:
            threading.Thread(target=synthetic, args=(broker.port, a.boards, a.period_ms, stop),
                             daemon=True).start()
        else:
            swarm = real(broker.port, a.boards, a.period_ms, folder)
        fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) >= a.boards, 900,
                   "every board online")
        dash = subprocess.Popen([str(BIN / "outstack"), "fleet", "serve", "--listen",
                                 "127.0.0.1:0", "--broker", f"127.0.0.1:{broker.port}", "--db",
                                 str(folder / "fleet.db"), "--token", TOKEN],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        drv = None
        try:
            port = int(re.search(r":(\d+)/\?token", dash.stdout.readline()).group(1))
            time.sleep(a.period_ms / 1000 * 1.5)  # every board's heartbeat seen once
            sizes, snap = [], []
            threading.Thread(target=listen, args=(port, sizes, snap), daemon=True).start()
            drv = browser()
            drv.get(f"http://127.0.0.1:{port}/?token={TOKEN}")
            end = time.monotonic() + 120
            while drv.execute_script("return document.body.dataset.boards") != str(a.boards):
                if time.monotonic() > end:
                    raise SystemExit("the page never showed every board")
                time.sleep(0.1)
            first = float(drv.execute_script("return document.body.dataset.firstRender"))
            time.sleep(a.seconds)
            redraw = [float(drv.execute_script("return document.body.dataset.renderMs"))]
            for _ in range(9):
                time.sleep(0.5)
                redraw.append(float(drv.execute_script("return document.body.dataset.renderMs")))
            sizes.sort()
            redraw.sort()
            print(f"boards: {a.boards} ({'synthetic' if a.synthetic else 'virtual'}, heartbeat "
                  f"every {a.period_ms} ms)")
            print(f"time to first render: {first:.0f} ms (navigation start to the table drawn)")
            print(f"first snapshot: {snap[0] if snap else 0} bytes")
            if sizes:
                print(f"update messages in {a.seconds:.0f} s: {len(sizes)}, median "
                      f"{sizes[len(sizes) // 2]} bytes, largest {sizes[-1]} bytes")
            print(f"page redraw after an update: median {redraw[len(redraw) // 2]:.1f} ms, "
                  f"largest {redraw[-1]:.1f} ms")
        finally:
            if drv:
                drv.quit()
            dash.terminate()
            dash.wait(30)
            stop.set()
            if swarm:
                swarm.stop()


if __name__ == "__main__":
    main()
