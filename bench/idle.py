"""Idle cost, measured from the host: a virtual board whose servers all wait for messages,
beside the same board running plain asyncio tasks that wait on Events. Prints the
interpreter's CPU use over the window (goal: outstack < 1% of one host CPU).

    .venv/bin/python bench/idle.py [--seconds 10]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack import image  # noqa: E402
from outstack.paths import ROOT  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402

OUTSTACK_MAIN = """
from outstack.system import System
TABLE = {"w%d" % i: {"factory": "idle_server:Waiter"} for i in range(5)}
print("idle: 5 servers waiting")
System(TABLE, config_path="/none.json").run_forever()
"""
SERVER = """
from outstack.server import Server
class Waiter(Server):
    def handle_cast(self, msg, arg):
        pass
"""
ASYNCIO_MAIN = """
import asyncio
async def waiter(ev):
    await ev.wait()
async def main():
    evs = [asyncio.Event() for _ in range(5)]
    print("idle: 5 asyncio tasks waiting")
    await asyncio.gather(*[waiter(e) for e in evs])
asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(main: str, seconds: float, tmp: Path, name: str) -> float:
    extra = tmp / f"{name}-main.py"
    extra.write_text(main)
    srv = tmp / "idle_server.py"
    srv.write_text(SERVER)
    files = [f for f in image.layout("unix", ROOT / "firmware") if f[1] != "/main.py"]
    files += [(str(extra), "/main.py"), (str(srv), "/lib/idle_server.py")]
    img = tmp / f"{name}.img"
    image.build(img, "unix", files)
    with VirtualBoard(img, "unix") as vb:
        vb.start()
        vb.wait_for("booted")
        while b"idle:" not in vb.output:
            time.sleep(0.05)
        time.sleep(0.5)  # let start-up settle
        c0, t0 = cpu_seconds(vb.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(vb.pid), time.monotonic()
    return 100.0 * (c1 - c0) / (t1 - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        ours = measure(OUTSTACK_MAIN, args.seconds, Path(d), "outstack")
        bare = measure(ASYNCIO_MAIN, args.seconds, Path(d), "asyncio")
    print(f"idle CPU over {args.seconds:.0f} s: outstack (5 servers waiting) {ours:.2f}% of one CPU; "
          f"plain asyncio (5 tasks on Events) {bare:.2f}% (goal: outstack < 1%)")


if __name__ == "__main__":
    main()
