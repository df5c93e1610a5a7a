"""The benches run on both engines in one command (short mode): the unix board's figure and
the QEMU board's (mps2-an385, real firmware) side by side, under each figure's label."""

import subprocess
import sys
from pathlib import Path


from tests.conftest import need, qemu_why

ROOT = Path(__file__).resolve().parents[2]
need(qemu_why(), "QEMU board")


def _run(*args):
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _figure(out, label):
    """{engine: value} of the lines under `label`."""
    lines = out.splitlines()
    i = lines.index(label)
    pairs = [ln.split(" : ", 1) for ln in lines[i + 1:i + 3]]
    return {engine.strip(): value for engine, value in pairs}


def test_ipc_bench_prints_both_engines_side_by_side():
    out = _run("bench/ipc.py", "--board", "mps2-an385", "--short")
    rtt = _figure(out, "call round trip")
    assert set(rtt) == {"unix", "mps2-an385"} and all("ratio" in v for v in rtt.values()), out
    assert "p99" in _figure(out, "urgent dispatch")["mps2-an385"], out


def test_verify_bench_prints_both_engines_side_by_side():
    out = _run("bench/verify.py", "--engine", "qemu", "--short")
    rsa = _figure(out, "verify  RSA-2048 PKCS#1 v1.5 SHA-256")
    assert set(rsa) == {"unix", "mps2-an385"} and all(v.endswith(" ms") for v in rsa.values())
    held = _figure(out, "loop held by one RSA-2048 check")
    assert all("stepped" in v and "pow()" in v for v in held.values()), out


def test_link_bench_prints_both_engines_side_by_side():
    out = _run("bench/link.py", "--board", "mps2-an385", "--short")
    now = _figure(out, "link reader, chunked (now)")
    before = _figure(out, "link reader, a read per byte (before)")
    assert set(now) == set(before) == {"unix", "mps2-an385"}, out
    assert all("of the CPU" in v for v in (*now.values(), *before.values())), out
