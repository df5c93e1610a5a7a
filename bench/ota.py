"""Update throughput on a virtual board, side by side in one run: a signed, compressed
`outstack ota push` of three modules over UART1 (verified and installed on the board) beside
`mpremote fs cp` of the same files over the USB REPL, both lines clocked at 115200 8N1
(11,520 bytes/s); also the same push stored uncompressed. Prints payload rates (module bytes
per second), their ratio to mpremote, and the fraction of line rate.

    .venv/bin/python bench/ota.py [--kib 32] [--short]

--engines: install time and hot-swap gap of one module on the unix board and on mps2-an385
(real firmware under QEMU, -icount shift=5: 31.25 MIPS), side by side with the ratio.

    .venv/bin/python bench/ota.py --engines [--pushes 5] [--short]
"""

import argparse
import json
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


def package(files, key, seq, compress=True, board="unix", source=True) -> bytes:
    from outstack.ota import pack

    srcs = pack.sources([f"{f}=app/{f.name}" for f in files])
    entries, blobs = pack.build_modules(srcs, board, source, "1.0.0", {}, compress)
    manifest = pack.update_manifest(board, seq, pack.framework_version(), entries)
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


# ----- --engines: install time and hot-swap gap, unix board beside mps2-an385 ---------------
# Measured on the board's own clock (time.ticks_us), so the QEMU figures are the emulated
# Cortex-M3's (31.25 MIPS under -icount shift=5), whatever the host's load. Install: from the
# package complete on flash to the board's verdict (RSA-2048 verify, SHA-256, stage, pointer
# swap, restart and first answer; the health check's wait set to 0 ms). Hot-swap gap: the
# time from the updated server's last answer on the old version to its first on the new one,
# to a prober calling it every 2 ms; beside it the longest wait for an answer from a server
# the update does not touch (the install's verification holds up the whole board).
SWAP_MAIN = """
import json
from outstack.system import System
with open("/ota.json") as f:
    ota = json.load(f)
System({"ota": {"factory": "swapbench:TimedOta", "essential": True, "rights": ("ota",),
                "config": ota},
        "greet": {"factory": "app.greet:Greet"},
        "other": {"factory": "swapbench:Other", "priority": 2},
        "prober": {"factory": "swapbench:Prober", "grants": ("greet", "other")}},
       config_path="/none.json").run_forever()
"""
SWAP_SERVERS = """
import asyncio
import time
from outstack.server import Server
from outstack.ota.service import OtaServer

INSTALLS = []  # us from the package on flash to the verdict, one per push
STAGES = []  # us of it in ota.install.install: stage, swap, restart, first answer


class TimedOta(OtaServer):
    async def install(self, path):
        from outstack.ota import install  # apply.py takes this one (loaded anew each push)

        real = install.install

        async def staged(*args, **kw):
            t = time.ticks_us()
            try:
                return await real(*args, **kw)
            finally:
                STAGES.append(time.ticks_diff(time.ticks_us(), t))

        install.install = staged
        t = time.ticks_us()
        said = await OtaServer.install(self, path)
        INSTALLS.append(time.ticks_diff(time.ticks_us(), t))
        return said


class Other(Server):
    def handle_call(self, msg, arg):
        return 1


class Prober(Server):
    # Calls both servers every 2 ms. swap: from the old version's last answer to the new
    # one's first; gap: the longest time between two answers, per server.
    def init(self, config, state):
        self.gap = {"greet": 0, "other": 0}
        self.seen = None
        self.swap = 0

    async def run(self):
        clients = (("greet", self.client("greet")), ("other", self.client("other")))
        last = {"greet": time.ticks_us(), "other": time.ticks_us()}
        while True:
            for name, c in clients:
                try:
                    await c.call("v", None, 2000)
                except Exception:
                    continue  # no answer: the gap goes on
                now = time.ticks_us()
                self.gap[name] = max(self.gap[name], time.ticks_diff(now, last[name]))
                if name == "greet":
                    if self.seen is not None and c.value != self.seen:
                        self.swap = time.ticks_diff(now, last[name])
                    self.seen = c.value
                last[name] = now
            await asyncio.sleep_ms(2)

    def handle_call(self, msg, arg):
        out = {"install": INSTALLS[-1] if INSTALLS else 0, "version": self.seen,
               "swap": self.swap, "stage": STAGES[-1] if STAGES else 0}
        out["verify"] = out["install"] - out["stage"]
        out.update(self.gap)
        self.gap = {"greet": 0, "other": 0}
        return out
"""
GREET_SRC = """
from outstack.server import Server

VERSION = "%s"


class Greet(Server):
    # The module an update replaces: a server with a little state and a few messages.
    def init(self, config, state):
        self.count = 0
        self.names = {}

    def handle_call(self, msg, arg):
        self.count += 1
        if msg == "v":
            return VERSION
        if msg == "hello":
            self.names[arg] = self.names.get(arg, 0) + 1
            return "hello %%s (%%d)" %% (arg, self.names[arg])
        if msg == "stats":
            return {"calls": self.count, "names": len(self.names)}
        return Server.handle_call(self, msg, arg)  # BadMessage
"""
ENGINES = (("unix", "unix"), ("qemu", "mps2-an385"))  # (engine, board)


def _ask(vb, expr, timeout=120.0):
    """What the board's live prompt answers to `await expr` (a Python literal)."""
    import ast

    start = len(vb.output)
    vb.type(f"await {expr}\r".encode())
    end = time.monotonic() + timeout
    while True:
        lines = vb.output[start:].decode(errors="replace").split("\r\n")
        echo = [i for i, line in enumerate(lines) if line.endswith(expr)]
        if echo and len(lines) > echo[0] + 2:
            return ast.literal_eval(lines[echo[0] + 1])
        if time.monotonic() > end:
            raise SystemExit(f"the board did not answer {expr}: {lines[-5:]}")
        time.sleep(0.02)


def _swap_board(engine, board, tmp: Path, key):
    from outstack.ota import keys

    d = tmp / engine
    d.mkdir()
    ota = {"keys": [keys.public_entry(key.public_key())], "health_ms": 0}
    made = {"main.py": SWAP_MAIN, "ota.json": json.dumps(ota), "swapbench.py": SWAP_SERVERS,
            "greet.py": GREET_SRC % "v0"}
    for name, text in made.items():
        (d / name).write_text(text)
    layout = [(str(d / "main.py"), "/main.py"), (str(d / "ota.json"), "/ota.json"),
              (str(d / "swapbench.py"), "/swapbench.py"), (str(d / "greet.py"), "/app/greet.py"),
              (str(ROOT / "firmware" / "boot.py"), "/boot.py")]
    if engine == "qemu":  # the framework is frozen in the firmware
        from outstack import firmware
        from outstack.sim.qemu import QemuBoard

        image.build(d / "flash.img", board, layout)
        return QemuBoard(d / "flash.img", board, firmware=firmware.build(board))
    lib = [f for f in image.layout(board, ROOT / "firmware") if f[1].startswith("/lib/")]
    image.build(d / "flash.img", board, lib + layout)
    return VirtualBoard(d / "flash.img", board, uart_baud=115200)


def _swap_run(engine, board, pushes, tmp: Path, key) -> list[dict]:
    rows = []
    with _swap_board(engine, board, tmp, key) as vb:
        vb.start()
        end = time.monotonic() + 120
        while b">>> " not in vb.output:
            if time.monotonic() > end:
                raise SystemExit(f"{board}: the board did not come up: {bytes(vb.output[-800:])!r}")
            time.sleep(0.05)
        _ask(vb, "call('prober', 'figures')")  # the gaps start afresh
        for seq in range(1, pushes + 1):
            src = tmp / engine / f"v{seq}" / "greet.py"
            src.parent.mkdir()
            src.write_text(GREET_SRC % f"v{seq}")
            push(vb, package([src], key, seq, board=board, source=False))
            while True:  # until the prober has had an answer from the new version
                got = _ask(vb, "call('prober', 'figures')")
                if got["version"] == f"v{seq}":
                    break
            rows.append(got)
    return rows


def engines(pushes: int):
    import statistics

    from outstack.ota import keys

    key = keys.generate(2048)
    figures = {}
    with tempfile.TemporaryDirectory() as d:
        for engine, board in ENGINES:
            figures[board] = _swap_run(engine, board, pushes, Path(d), key)
    print(f"one module (app/greet.py as .mpy) updated {pushes} time(s) on each board over "
          "UART1, signed (RSA-2048); times on the board's clock (ticks_us); health-check wait 0")
    print(f"{'ms: median (worst)':<34}{'unix':>17}{'mps2-an385':>17}{'ratio':>8}")
    for what, k in (("install (verify .. first answer)", "install"),
                    ("  verify and checks (pre-stage)", "verify"),
                    ("  stage, swap, restart, answer", "stage"),
                    ("hot-swap gap (old .. new answer)", "swap"),
                    ("longest wait, another server", "other")):
        cols = []
        for _, board in ENGINES:
            ms = [r[k] / 1000 for r in figures[board]]
            cols.append((statistics.median(ms), max(ms)))
        ratio = cols[1][0] / cols[0][0] if cols[0][0] else float("inf")
        if k == "install":
            print("  each push: " + "; ".join(
                f"{board} " + " ".join(f"{r[k] / 1000:.0f}" for r in figures[board])
                for _, board in ENGINES))
        print(f"{what:<34}" + "".join(f"{m:8.1f} ({w:6.1f})" for m, w in cols)
              + f"{ratio:7.1f}x")
    print("mps2-an385: MicroPython firmware on a Cortex-M3 under QEMU, -icount shift=5 "
          "(31.25 MIPS), framework frozen; unix: the MicroPython unix port on this host")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kib", type=int, default=32, help="payload size (KiB)")
    # (bench/verify.py prints the board's signature verification time)
    ap.add_argument("--short", action="store_true", help="4 KiB: prove the script runs")
    ap.add_argument("--files", nargs="+", help="push these module sources instead (e.g. firmware/app/*.py)")
    ap.add_argument("--engines", action="store_true",
                    help="install time and hot-swap gap on the unix board and on mps2-an385")
    ap.add_argument("--pushes", type=int, default=5, help="--engines: updates per engine")
    args = ap.parse_args()
    if args.engines:
        engines(1 if args.short else args.pushes)
        return
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
