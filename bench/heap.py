"""Where the heap goes, on the unix virtual board and on real firmware under QEMU (mps2-an385,
32-bit, the framework frozen in), side by side when both are named:
  1. the framework's heap after import (`import outstack.system`: kernel, server, supervisor,
     inbox, errors, asyncio), with its modules as .py, as .mpy and (QEMU) frozen, on a bare
     board (no boot.py, main.py prints one line); and what each of those modules adds,
     imported one after another in their load order;
  2. the demo's free heap with OTA and the console up: read at the live prompt beside the
     running servers, after boot and again after a console command (`outstack console
     servers`, which loads the console's command code for that command); on the unix board
     also with each server turned off ("enabled": false in /config.json);
  3. the heap each module costs to import (itself and what it pulls in that is not loaded
     yet), one fresh interpreter per module (mpremote soft-resets between them; a module that
     grows MicroPython's qstr pool carries that growth, so read these as rough).
The demo on QEMU runs as a product ships it (framework and app frozen, nothing in /lib); its
sensor needs machine.ADC, so where the firmware has none the sensor is turned off (said so).

    .venv/bin/python bench/heap.py [--board rp2040] [--board mps2-an385] [--short]
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _engines import DEMO, MPREMOTE, QEMU_BOARDS, flash, open_board

FRAMEWORK = "outstack.system"
CHAIN = ["asyncio", "outstack", "outstack.errors", "outstack.inbox", "outstack.kernel",
         "outstack.server", "outstack.supervisor", "outstack.system"]  # its load order
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
OUTSTACK = Path(sys.executable).parent / "outstack"


def wait(vb, needle: bytes, since=0, timeout=120.0):
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
    end = time.monotonic() + 60
    while not (m := re.search(rb"HEAP=(\d+)=", vb.output[since:])):
        if time.monotonic() > end:
            raise SystemExit("heap bench: no figure from the live prompt:\n"
                             + vb.output[-1500:].decode(errors="replace"))
        time.sleep(0.05)
    return int(m.group(1))


def missing(tmp: Path, board: str) -> list[str]:
    """What the demo needs that the firmware lacks (machine.ADC: the sensor; machine.Pin:
    the status LED)."""
    img = flash(tmp, board, "probe", {"/main.py": "print('bare board')\n"}, lib=False, boot=False)
    b = open_board(img, board)
    try:
        out = subprocess.run([str(MPREMOTE), "connect", b.usb_port, "exec",
                              "import machine;print('HAS', hasattr(machine, 'ADC'), "
                              "hasattr(machine, 'Pin'))"],
                             capture_output=True, text=True, timeout=120).stdout
    finally:
        b.stop()
    m = re.search(r"HAS (\w+) (\w+)", out)
    return [name for name, ok in zip(("machine.ADC", "machine.Pin"), m.groups()) if ok != "True"]


def demo_free(tmp: Path, board: str, off: tuple, console: bool) -> tuple[int, int | None]:
    """(free after boot, free after a console command) of the demo with `off` turned off."""
    cfg = json.loads((DEMO / "config.json").read_text())
    for name in off:
        cfg["servers"].setdefault(name, {})["enabled"] = False
    name = "demo-" + ("-".join(off) or "all")
    qemu = board in QEMU_BOARDS
    img = flash(tmp, board, name, {"/config.json": json.dumps(cfg)}, lib=not qemu)
    vb = open_board(img, board, prompt=False)
    try:
        wait(vb, b"Outstack Micro on")
        if "status" in off or "storage" in off:  # no status line (it needs storage)
            time.sleep(4)  # the first readings and flush: the demo has settled
        else:
            wait(vb, b"status: up")  # the first status line: the demo has settled
        booted = live_free(vb)
        if not console:
            return booted, None
        out = subprocess.run([str(OUTSTACK), "console", "--port", vb.usb_port, "servers"],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0 or b"MemoryError" in vb.output:
            raise SystemExit(f"heap bench: the console failed beside the demo on {board}:\n"
                             f"{out.stdout}{out.stderr}")
        return booted, live_free(vb)
    finally:
        vb.stop()


def import_costs(img: Path, board: str, modules: list[str], lib_first=False) -> dict:
    """Each module imported alone in a fresh interpreter (mpremote soft-resets for each).
    lib_first: /lib goes before the frozen modules (QEMU: the framework as files)."""
    pre = "sys.path.insert(0,'/lib');" if lib_first else ""
    probe = ("import gc,sys;" + pre + "gc.collect();b=gc.mem_free()\ntry:\n import {m}\n"
             " gc.collect();print('COST {m}', b-gc.mem_free())\n"
             "except Exception as e:\n print('FAILED {m}', repr(e))")
    args = []
    for m in modules:
        args += ["exec", probe.format(m=m), "soft-reset"]
    vb = open_board(img, board)
    try:
        out = subprocess.run([str(MPREMOTE), "connect", vb.usb_port, *args],
                             capture_output=True, text=True, timeout=1800).stdout
    finally:
        vb.stop()
    for m, why in re.findall(r"FAILED (\S+) (.*)", out):
        print(f"heap bench: {m} does not import on {board}: {why}")
    return {m: int(n) for m, n in re.findall(r"COST (\S+) (-?\d+)", out)}


def own_costs(img: Path, board: str, lib_first=False) -> dict:
    """What each module of the framework adds, imported one after another in one interpreter
    in the order the framework loads them (each on top of those before)."""
    pre = "sys.path.insert(0,'/lib')\n" if lib_first else ""
    probe = ("import gc,sys\n" + pre + "for m in %r:\n gc.collect();b=gc.mem_free();"
             "__import__(m);gc.collect();print('OWN',m,b-gc.mem_free())" % (CHAIN,))
    vb = open_board(img, board)
    try:
        out = subprocess.run([str(MPREMOTE), "connect", vb.usb_port, "exec", probe],
                             capture_output=True, text=True, timeout=600).stdout
    finally:
        vb.stop()
    return {m: int(n) for m, n in re.findall(r"OWN (\S+) (-?\d+)", out)}


def kinds(board: str) -> list[str]:
    return [".py", ".mpy", "frozen"] if board in QEMU_BOARDS else [".py", ".mpy"]


def costs(tmp: Path, board: str, kind: str, modules: list[str], own=False) -> dict:
    bare = {"/main.py": "print('bare board')\n"}
    qemu = board in QEMU_BOARDS
    if kind == "frozen":
        img = flash(tmp, board, "frozen", bare, lib=False, boot=False)
    else:
        img = flash(tmp, board, kind[1:], bare, source=kind == ".py", boot=False)
    if own:
        return own_costs(img, board, lib_first=qemu and kind != "frozen")
    return import_costs(img, board, modules, lib_first=qemu and kind != "frozen")


def row(label: str, cells: list, width=12) -> str:
    return f"  {label:<36}" + "".join(f"{'-' if c is None else c:>{width}}" for c in cells)


def measure(tmp: Path, board: str, short: bool) -> dict:
    r = {"framework": {}, "modules": {}, "demo": {}, "own": {}}
    for kind in kinds(board):
        r["framework"][kind] = costs(tmp, board, kind, [FRAMEWORK]).get(FRAMEWORK)
    for kind in kinds(board)[1:]:
        r["own"][kind] = costs(tmp, board, kind, CHAIN, own=True)
    off = ()
    lacks = missing(tmp, board) if board in QEMU_BOARDS else []
    if lacks:  # outstack.hal covers them: the sensor runs and publishes nothing, the LED is a register
        r["note"] = ("this firmware has no %s: every server runs; the hal says there is no ADC "
                     "(the sensor publishes nothing) and drives the LED through its register"
                     % " or ".join(lacks))
    r["demo"]["demo, all servers"] = demo_free(tmp, board, off, console=True)
    if not short and board not in QEMU_BOARDS:
        for s in ("ota", "status", "storage", "processing", "sensor"):
            r["demo"][f"demo without {s}"] = demo_free(tmp, board, (s,), console=False)
    modules = SHORT_MODULES if short else MODULES
    for kind in ([".mpy"] if board not in QEMU_BOARDS else [".mpy", "frozen"]):
        r["modules"][kind] = costs(tmp, board, kind, modules)
    return r


def report(results: dict) -> None:
    boards = list(results)
    cols = [(b, k) for b in boards for k in kinds(b)]
    print(f"\nframework heap after `import {FRAMEWORK}` (bytes)")
    print(row("", [f"{b} {k}" for b, k in cols], 22))
    print(row(FRAMEWORK, [results[b]["framework"][k] for b, k in cols], 22))
    ocols = [(b, k) for b in boards for k in results[b]["own"]]
    print(f"\nwhat each module adds to `import {FRAMEWORK}`, in load order (bytes)")
    print(row("", [f"{b} {k}" for b, k in ocols], 22))
    for m in CHAIN:
        print(row(m, [results[b]["own"][k].get(m) for b, k in ocols], 22))
    print(row("sum", [sum(results[b]["own"][k].values()) for b, k in ocols], 22))
    for b in boards:
        r = results[b]
        print(f"\nfree heap after boot on --board {b} ({'frozen' if b in QEMU_BOARDS else '.mpy'})"
              + (f"  [{r['note']}]" if r.get("note") else ""))
        base = r["demo"]["demo, all servers"][0]
        for name, (booted, after) in r["demo"].items():
            line = f"  {name:<34} {booted:>8} bytes"
            if after is not None:
                line += f"   after a console command: {after:>8} bytes"
            elif name.startswith("demo without"):
                line += f"   ({name[13:]} costs {booted - base} bytes while it runs)"
            print(line)
    mcols = [(b, k) for b in boards for k in results[b]["modules"]]
    print("\nheap cost of importing each module alone (bytes)")
    print(row("", [f"{b} {k}" for b, k in mcols], 22))
    first = results[mcols[0][0]]["modules"][mcols[0][1]]
    for m in sorted(first, key=lambda m: -first[m]):
        print(row(m, [results[b]["modules"][k].get(m) for b, k in mcols], 22))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--board", action="append", default=[],
                    help="rp2040 (default; unix engine), mps2-an385 (QEMU); give both for "
                         "side by side")
    ap.add_argument("--short", action="store_true", help="no per-server rows, three modules")
    a = ap.parse_args()
    boards = a.board or ["rp2040"]
    with tempfile.TemporaryDirectory() as t:
        results = {}
        for b in boards:
            (Path(t) / b).mkdir()
            results[b] = measure(Path(t) / b, b, a.short)
    report(results)


if __name__ == "__main__":
    main()
