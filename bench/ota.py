"""Update-link throughput on a virtual board, side by side in one run: `outstack` push over
UART1 beside `mpremote fs cp` of the same files over the USB REPL, both lines clocked at
115200 8N1 (11,520 bytes/s). Prints both rates, their ratio and the fraction of line rate.

    .venv/bin/python bench/ota.py [--kib 32] [--short]
"""

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack import image  # noqa: E402
from outstack.ota.transfer import Sender, SerialLine  # noqa: E402
from outstack.paths import tool  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402

LINE = 11520  # bytes/s of 115200 8N1
MAIN = """
from outstack.system import System
System({"ota": {"factory": "outstack.ota.service:OtaServer"}}, config_path="/none.json").run_forever()
"""


def modules(total: int) -> list[bytes]:
    """Three module-sized files of Python-like text, `total` bytes in all."""
    rng = random.Random(5)
    words = [b"self", b"return", b"def", b"value", b"await", b"server", b"msg", b"arg", b"(", b")"]
    out = []
    for share in (0.5, 0.3, 0.2):
        n = int(total * share)
        text = bytearray()
        while len(text) < n:
            text += rng.choice(words) + rng.choice([b" ", b"\n    ", b", "])
        out.append(bytes(text[:n]))
    return out


def push(vb, payload: bytes) -> float:
    line = SerialLine(vb.uart_port)
    t0 = time.monotonic()
    Sender(line).push(payload)
    took = time.monotonic() - t0
    line.close()
    return took


def mpremote_cp(vb, files: list[Path]) -> float:
    args = [tool("mpremote"), "connect", vb.usb_port, "exec", "import os"]
    for f in files:
        args += ["+", "fs", "cp", str(f), f":/{f.name}"]
    t0 = time.monotonic()
    subprocess.run(args, check=True, capture_output=True, timeout=600)
    return time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kib", type=int, default=32, help="payload size (KiB)")
    ap.add_argument("--short", action="store_true", help="4 KiB: prove the script runs")
    args = ap.parse_args()
    total = 4096 if args.short else args.kib * 1024
    blobs = modules(total)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = []
        for i, blob in enumerate(blobs):
            files.append(tmp / f"mod{i}.py")
            files[-1].write_bytes(blob)
        (tmp / "main.py").write_text(MAIN)
        layout = [f for f in image.layout("unix") if f[1] != "/main.py"]
        image.build(tmp / "flash.img", "unix", layout + [(str(tmp / "main.py"), "/main.py")])
        with VirtualBoard(tmp / "flash.img", "unix", uart_baud=115200, usb_baud=115200) as vb:
            vb.start()
            vb.wait_for("booted")
            time.sleep(0.5)
            ours = push(vb, b"".join(blobs))
            theirs = mpremote_cp(vb, files)
    rate, base = total / ours, total / theirs
    print(f"payload {total} bytes in {len(blobs)} files, both links 115200 8N1 ({LINE} B/s)")
    print(f"outstack push (UART1)   : {ours:6.2f} s  {rate:7.0f} B/s  {100 * rate / LINE:5.1f}% of line rate")
    print(f"mpremote fs cp (USB)    : {theirs:6.2f} s  {base:7.0f} B/s  {100 * base / LINE:5.1f}% of line rate")
    print(f"ratio                   : {rate / base:.2f}x (goals: >= 90% of line rate, >= 3x mpremote)")


if __name__ == "__main__":
    main()
