"""Host side of the benches: one bench, both engines. Builds a board's flash image (the demo's
firmware with the framework as .mpy, as `outstack image` makes it), starts the unix virtual
board or real firmware under QEMU (`mps2-an385`, -icount shift=5, framework frozen), runs a
device bench script there with stock mpremote, and prints the two outputs line by line, side
by side.

    .venv/bin/python bench/ipc.py [--board mps2-an385] [--short]
    .venv/bin/python bench/verify.py [--board mps2-an385] [--short]
"""

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host_tools"))
from outstack import image  # noqa: E402
from outstack.stage import stage  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402

DEMO = ROOT / "firmware"
MPREMOTE = Path(sys.executable).parent / "mpremote"
QEMU_BOARDS = ("mps2-an385",)


def flash(tmp: Path, board: str, name: str, files: dict, source=False, lib=True,
          boot=True) -> Path:
    """A flash image of the demo with `files` (board path: text) added or replacing its own.
    source: modules as .py (else .mpy); lib=False: no /lib (the firmware's frozen framework
    alone); boot=False: no boot.py (nothing imported before the first prompt)."""
    base = image.layout(board, DEMO)
    if not lib:
        base = [f for f in base if not f[1].startswith("/lib/")]
    if not boot:
        base = [f for f in base if f[1] != "/boot.py"]
    if not source:
        base = [(str(p), d) for p, d in stage(base, board, out=tmp / f"mpy-{name}")]
    given = set(files) | {d[:-3] + ".mpy" for d in files if d.endswith(".py")}
    base = [f for f in base if f[1] not in given]
    extra = []
    for i, (dest, text) in enumerate(files.items()):
        src = tmp / f"{name}-extra-{i}"
        src.write_text(text)
        extra.append((str(src), dest))
    img = tmp / f"{name}.img"
    image.build(img, board, base + extra)
    return img


def open_board(img: Path, board: str, exact=False, prompt=True):
    """The board's engine, started. exact (QEMU): virtual time jumps over idle waits, so
    figures repeat to the microsecond (benches that only compute). prompt=False: main.py
    runs on (the QEMU engine tells a start by the REPL banner that follows main.py)."""
    if board in QEMU_BOARDS:
        from outstack.sim.qemu import QemuBoard

        b = QemuBoard(img, board, sleep=not exact)
        b.start()
        b.wait_for("booted" if prompt else "spawn", timeout=120)
        return b
    b = VirtualBoard(img, board)
    b.start()
    b.wait_for("booted")
    return b


def mpremote(port: str, *args, timeout=1200) -> str:
    out = subprocess.run([str(MPREMOTE), "connect", port, *args], capture_output=True,
                         text=True, timeout=timeout)
    if out.returncode != 0:
        raise SystemExit(f"bench: mpremote {' '.join(args[:2])} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def run_script(board: str, script: Path, short: bool) -> str:
    """What `script` printed, run by mpremote on a fresh board (main.py bare)."""
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        qemu = board in QEMU_BOARDS
        img = flash(tmp, board, "bench", {"/main.py": "print('bench board')\n"}, lib=not qemu)
        b = open_board(img, board, exact=True)
        try:
            return mpremote(b.usb_port, "exec", f"BENCH_SHORT={int(short)}", "run", str(script))
        finally:
            b.stop()


FIGURE = re.compile(r"^([a-z][^:]*?)\s*:\s*(.*)$")  # "label   : value"; not "outstack: ..."


def figures(out: str) -> dict:
    """label -> value of the figure lines of a bench's output (what the board said besides,
    such as the crash reports of the restart figure, is left out)."""
    found = {}
    for line in out.splitlines():
        m = FIGURE.match(line.rstrip())
        if m and m.group(1) != "outstack":
            found.setdefault(m.group(1), m.group(2))
    return found


def side_by_side(outputs: dict) -> None:
    """Each figure once per engine, under its label."""
    names = list(outputs)
    found = {n: figures(out) for n, out in outputs.items()}
    width = max(len(n) for n in names)
    for label in found[names[0]]:
        print(label)
        for n in names:
            print(f"    {n:<{width}} : {found[n].get(label, '(not printed)')}")


def host_main(script: str) -> None:
    ap = argparse.ArgumentParser(description=f"bench/{Path(script).name} on the boards")
    ap.add_argument("--board", action="append", default=[],
                    help="also run on this board (mps2-an385: real firmware under QEMU)")
    ap.add_argument("--engine", choices=("unix", "qemu"), action="append", default=[],
                    help="qemu: the same as --board mps2-an385")
    ap.add_argument("--unix-board", default="unix", help="the unix engine's board (default unix)")
    ap.add_argument("--short", action="store_true")
    a = ap.parse_args()
    boards = [a.unix_board] + [b for b in a.board if b != a.unix_board]
    if "qemu" in a.engine and "mps2-an385" not in boards:
        boards.append("mps2-an385")
    outputs = {}
    for board in boards:
        outputs[board] = run_script(board, Path(script).resolve(), a.short)
    if len(outputs) == 1:
        print(outputs[boards[0]], end="")
    else:
        side_by_side(outputs)


def figure(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    return m.group(1) if m else "?"
