"""Update throughput on a virtual board, side by side in one run: a signed, compressed
`outstack ota push` of three modules over UART1 (verified and installed on the board) beside
`mpremote fs cp` of the same files over the USB REPL, both lines clocked at 115200 8N1
(11,520 bytes/s); also the same push stored uncompressed. Prints payload rates (module bytes
per second), their ratio to mpremote, and the fraction of line rate.

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
from outstack.paths import ROOT, tool  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402

LINE = 11520  # bytes/s of 115200 8N1
MAIN = """
import json
from outstack.system import System
with open("/ota.json") as f:
    ota = json.load(f)
System({"ota": {"factory": "outstack.ota.service:OtaServer", "rights": ("ota",),
                "config": ota}}, config_path="/none.json").run_forever()
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


def push(vb, payload: bytes):
    line = SerialLine(vb.uart_port)
    sender = Sender(line)
    said = sender.push(payload)
    line.close()
    if not said.startswith("installed"):
        raise SystemExit(f"the board did not install the package: {said}")
    return sender


def package(files, key, seq, compress=True) -> bytes:
    from outstack.ota import pack

    srcs = pack.sources([f"{f}=app/{f.name}" for f in files])
    entries, blobs = pack.build_modules(srcs, "unix", True, "1.0.0", {}, compress)
    manifest = pack.update_manifest("unix", seq, pack.framework_version(), entries)
    return pack.assemble(manifest, blobs, key).to_bytes()


def mpremote_cp(vb, files: list[Path]) -> float:
    args = [tool("mpremote"), "connect", vb.usb_port, "exec", "import os"]
    for f in files:
        args += ["+", "fs", "cp", str(f), f":/{f.name}"]
    t0 = time.monotonic()
    subprocess.run(args, check=True, capture_output=True, timeout=600)
    return time.monotonic() - t0


def on_board_verify(vb) -> str:
    bench = Path(__file__).resolve().parent / "verify.py"
    out = subprocess.run([tool("mpremote"), "connect", vb.usb_port, "run", str(bench)],
                         capture_output=True, text=True, timeout=300).stdout
    rows = [line.split("SHA-256:")[-1].strip() + " " + line.split()[1]
            for line in out.splitlines() if line.startswith("verify")]
    return ", ".join(rows) or "not measured"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kib", type=int, default=32, help="payload size (KiB)")
    # (bench/verify.py prints the board's signature verification time)
    ap.add_argument("--short", action="store_true", help="4 KiB: prove the script runs")
    ap.add_argument("--files", nargs="+", help="push these module sources instead (e.g. firmware/app/*.py)")
    args = ap.parse_args()
    blobs = ([Path(f).read_bytes() for f in args.files] if args.files
             else modules(4096 if args.short else args.kib * 1024))
    total = sum(len(b) for b in blobs)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = []
        for i, blob in enumerate(blobs):
            files.append(tmp / f"mod{i}.py")
            files[-1].write_bytes(blob)
        from outstack.ota import keys

        key = keys.generate(2048)
        ota = {"keys": [keys.public_entry(key.public_key())]}
        (tmp / "ota.json").write_text(__import__("json").dumps(ota))
        (tmp / "main.py").write_text(MAIN)
        layout = [f for f in image.layout("unix", ROOT / "firmware") if f[1] != "/main.py"]
        layout += [(str(tmp / "main.py"), "/main.py"), (str(tmp / "ota.json"), "/ota.json")]
        image.build(tmp / "flash.img", "unix", layout)
        zipped, plain = package(files, key, 1), package(files, key, 2, compress=False)
        with VirtualBoard(tmp / "flash.img", "unix", uart_baud=115200, usb_baud=115200) as vb:
            vb.start()
            vb.wait_for("booted")
            time.sleep(0.5)
            s_zip = push(vb, zipped)
            s_plain = push(vb, plain)
            theirs = mpremote_cp(vb, files)
            verified = on_board_verify(vb)
    base = total / theirs
    print(f"payload {total} bytes of {'module sources' if args.files else 'Python-like text'} in "
          f"{len(blobs)} files; both links 115200 8N1 "
          f"({LINE} B/s); pushes are signed (RSA-2048), verified and installed on the board")
    rows = (("push, zlib", s_zip.transfer_s, len(zipped)),
            ("push, stored", s_plain.transfer_s, len(plain)), ("mpremote fs cp", theirs, total))
    for what, took, size in rows:
        rate = total / took
        print(f"{what:<16}: {took:6.2f} s for {size:6d} bytes on the line, payload {rate:7.0f} B/s "
              f"= {100 * rate / LINE:5.1f}% of line rate, {rate / base:4.2f}x mpremote")
    print("then on the board (verify, stage, swap, 3 s health check): "
          f"{s_zip.install_s:.2f} s and {s_plain.install_s:.2f} s")
    print(f"signature verification on the board (bench/verify.py): {verified}")
    print("goals: >= 90% of line rate uncompressed, >= 3x mpremote fs cp")


if __name__ == "__main__":
    main()
