"""Where the heap goes: virtual boards built as a board gets them (modules as .mpy, like
tests/conftest.py make_board), printing
  1. free heap after boot for the demo, all servers on, and with each server turned off
     ("enabled": false in /config.json), read at the live prompt beside the running servers;
  2. the heap each framework module costs to import (itself and what it pulls in that is not
     loaded yet), on a board whose main.py is bare, one fresh interpreter per module (boot.py
     has loaded outstack.ota.slots already; a module that happens to grow MicroPython's qstr
     pool carries that growth, so read these as rough).
Both tables sorted, biggest first.

    .venv/bin/python bench/heap.py [--board rp2040] [--short]
"""

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack import image  # noqa: E402
from outstack.commands.deploy import stage  # noqa: E402
from outstack.paths import ROOT  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402

DEMO = ROOT / "firmware"
MPREMOTE = Path(sys.executable).parent / "mpremote"
MODULES = [
    "outstack", "outstack.errors", "outstack.inbox", "outstack.spec", "outstack.config",
    "outstack.server", "outstack.client", "outstack.kernel", "outstack.supervisor",
    "outstack.system", "outstack.repl", "outstack.crashlog", "outstack.reports",
    "outstack.safemode", "outstack.guard", "outstack.irq", "outstack.idle", "outstack.log",
    "outstack.minilog", "outstack.hal", "outstack.ota.link", "outstack.ota.store",
    "outstack.ota.receive", "outstack.ota.service", "outstack.ota.slots",
    "outstack.ota.verify", "outstack.ota.rsa", "outstack.ota.package",
    "outstack.ota.install", "outstack.ota.apply", "outstack.ota.push",
    "outstack.debug.console", "outstack.debug.auth", "outstack.debug.mem",
    "outstack.debug.view", "outstack.debug.crashes", "app.status", "app.storage",
    "app.processing", "app.sensor", "app.uplink",
]
SHORT_MODULES = ["outstack.system", "outstack.ota.service", "outstack.ota.verify"]


def build(tmp: Path, board: str, name: str, files: dict) -> Path:
    """A flash image of the demo, compiled to .mpy, with `files` (board path: text) added."""
    base = stage(image.layout(board, DEMO), board, out=tmp / f"mpy-{name}")
    base = [(str(p), d) for p, d in base if d not in files]
    extra = []
    for i, (dest, text) in enumerate(files.items()):
        src = tmp / f"{name}-extra-{i}"
        src.write_text(text)
        extra.append((str(src), dest))
    img = tmp / f"{name}.img"
    image.build(img, board, base + extra)
    return img


def wait(vb, needle: bytes, since=0, timeout=60.0):
    end = time.monotonic() + timeout
    while needle not in vb.output[since:]:
        if time.monotonic() > end:
            raise SystemExit(f"heap bench: no {needle!r} from the board:\n"
                             + vb.output[-1500:].decode(errors="replace"))
        time.sleep(0.05)


def live_free(vb) -> int:
    """Free heap (after a collect) asked at the live prompt, the servers running beside it."""
    since = len(vb.output)
    vb.type(b"import gc;gc.collect();print('HEAP=%d=' % gc.mem_free())\r")
    wait(vb, b"HEAP=", since)
    end = time.monotonic() + 30
    while not (m := re.search(rb"HEAP=(\d+)=", vb.output[since:])):
        if time.monotonic() > end:
            raise SystemExit("heap bench: no figure from the live prompt")
        time.sleep(0.05)
    return int(m.group(1))


def demo_free(tmp: Path, board: str, off: str | None) -> int:
    cfg = json.loads((DEMO / "config.json").read_text())
    if off:
        cfg["servers"].setdefault(off, {})["enabled"] = False
    img = build(tmp, board, f"demo-{off or 'all'}", {"/config.json": json.dumps(cfg)})
    with VirtualBoard(img, board) as vb:
        vb.start()
        vb.wait_for("booted")
        wait(vb, b"Outstack Micro on")
        time.sleep(4)  # the first status lines, the first flush: the demo has settled
        return live_free(vb)


def import_costs(tmp: Path, board: str, modules: list[str]) -> dict:
    """Each module imported alone in a fresh interpreter (mpremote soft-resets for each)."""
    import subprocess

    img = build(tmp, board, "bare", {"/main.py": "print('bare board')\n"})
    probe = ("import gc,sys;gc.collect();b=gc.mem_free();import {m};gc.collect();"
             "print('COST {m}', b-gc.mem_free())")
    args = []
    for m in modules:
        args += ["exec", probe.format(m=m), "soft-reset"]
    with VirtualBoard(img, board) as vb:
        vb.start()
        vb.wait_for("booted")
        out = subprocess.run([str(MPREMOTE), "connect", vb.usb_port, *args],
                             capture_output=True, text=True, timeout=600).stdout
    return {m: int(n) for m, n in re.findall(r"COST (\S+) (-?\d+)", out)}


def table(title: str, rows: dict, unit="bytes"):
    print(f"\n{title}")
    for name, n in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<34} {n:>8} {unit}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", default="rp2040")
    ap.add_argument("--short", action="store_true", help="all servers on, three modules")
    a = ap.parse_args()
    servers = [] if a.short else ["ota", "status", "storage", "processing", "sensor"]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        free = {"demo, all servers": demo_free(tmp, a.board, None)}
        for s in servers:
            free[f"demo without {s}"] = demo_free(tmp, a.board, s)
        base = free["demo, all servers"]
        table(f"free heap after boot on --board {a.board} (.mpy)", free)
        for name, n in free.items():
            if name != "demo, all servers":
                print(f"  {name[13:]:<10} costs {n - base:>7} bytes while it runs")
        costs = import_costs(tmp, a.board, SHORT_MODULES if a.short else MODULES)
        table(f"heap cost of importing each module alone on --board {a.board} (.mpy)", costs)


if __name__ == "__main__":
    main()
