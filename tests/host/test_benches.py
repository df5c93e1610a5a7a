"""The benchmark scripts still run (short mode): figures are for people, not for asserts."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import mpremote

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, timeout=300):
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_idle_bench_runs():
    assert "idle CPU over 1 s: outstack" in _run("bench/idle.py", "--seconds", "1")


def test_ota_bench_runs():
    out = _run("bench/ota.py", "--short")
    assert "push, stored" in out and "mpremote fs cp" in out


def test_verify_bench_runs():
    out = subprocess.run([str(Path(sys.executable).parent / "micropython"), "bench/verify.py",
                          "--short"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "RSA-2048" in out.stdout, out.stdout + out.stderr
    assert "loop held by one RSA-2048 check:" in out.stdout, out.stdout


def test_link_bench_runs():
    out = _run("bench/link.py", "--short")
    assert "link reader, chunked (now)" in out and "a read per byte (before)" in out, out
    assert "% of the CPU for a 115200 line" in out and "x the time" in out, out


def test_ipc_bench_runs_on_a_virtual_board(make_board):
    vb = make_board(files={"/main.py": "print('bench board')\n"})
    out = mpremote(vb.usb_port, "exec", "BENCH_SHORT=1", "run", str(ROOT / "bench/ipc.py"),
                   timeout=300).stdout
    assert "call round trip" in out and "urgent dispatch" in out and "starvation" in out, out


def test_trace_bench_runs_on_a_virtual_board(make_board):
    vb = make_board(files={"/main.py": "print('bench board')\n"})
    out = mpremote(vb.usb_port, "exec", "BENCH_SHORT=1", "run", str(ROOT / "bench/trace.py"),
                   timeout=300).stdout
    assert "recording on" in out and "tracing on" in out, out


def test_dev_bench_runs():
    out = _run("bench/dev.py", "--short")
    assert "outstack dev over UART1 115200: serving" in out and "over TCP: verdict" in out, out
    assert "mpremote fs cp + soft reset" in out


def test_heap_bench_runs():
    out = _run("bench/heap.py", "--short")
    assert "free heap after boot on --board rp2040" in out and "outstack.ota.service" in out, out


def test_fleet_bench_runs():
    import shutil

    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        from tests.conftest import need
        from outstack.fleet.broker import INSTALL

        need(INSTALL, "MQTT broker (mosquitto)")
    out = _run("bench/fleet.py", "--short")
    assert "all online" in out and "per board per minute" in out and "installed in" in out, out
    assert "rollout to 3 boards" in out and "held by the fleet server" in out, out
