"""Fuzzing the live prompt through the USB pty of a running virtual board: a megabyte of
seeded random bytes, random lines, endless lines and control characters. Afterwards the board
has not reset, every server answers, the heap is where it was and the host console works.
OUTSTACK_FUZZ_BYTES sets the amount (default 1 MB), OUTSTACK_FUZZ_SEED the seed."""

import os
import random
import time

import serial

from tests.conftest import COUNTER_MAIN, number, outstack, typed

MAIN = COUNTER_MAIN + """
class Store(Server):
    def handle_call(self, msg, arg):
        return "stored"

TABLE = {"counter": {"factory": Counter, "priority": 2},
         "store": {"factory": Store, "priority": 0}}
System(TABLE, config_path="/none.json").run_forever()
"""
TOTAL = int(os.environ.get("OUTSTACK_FUZZ_BYTES", 1 << 20))
SEED = int(os.environ.get("OUTSTACK_FUZZ_SEED", 20261130))
CHUNK = 1 << 15  # bytes between two waits for the board to catch up
CTRL_C = 3  # interrupts main.py, as on any board: that is a user's act, not noise
# Characters of the random lines: no letters, quotes or '*' and '<', so no line can name
# something, intern a new string, or ask for an enormous number.
LINE_CHARS = b" 0123456789+-/%()[]{},.:;=!&|^~@#$?"


def _noise(rng: random.Random, n: int) -> bytes:
    kind = rng.randrange(5)
    if kind == 0:  # raw bytes
        data = bytes(rng.getrandbits(8) for _ in range(n))
    elif kind == 1:  # lines of Python-ish punctuation
        data = b"\r".join(bytes(rng.choice(LINE_CHARS) for _ in range(rng.randrange(80)))
                          for _ in range(max(1, n // 40)))
    elif kind == 2:  # one endless line
        data = bytes([rng.choice(LINE_CHARS)]) * n
    elif kind == 3:  # control characters and escape sequences
        data = bytes(rng.choice(b"\x00\x01\x02\x04\x05\x07\x08\x09\x0b\x0c\x1b[A\x7f\x1e\r\n")
                     for _ in range(n))
    else:  # console commands that are noise
        data = b"".join(b"\x1e" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(60)))
                        + b"\r" for _ in range(max(1, n // 30)))
    return data.replace(bytes([CTRL_C]), b"")


def _heap(vb) -> int:
    return number(vb, "[__import__('gc').collect(), __import__('gc').mem_free()][1]")


def _sync(vb, port, n, timeout=60.0):
    # Wait until the board has taken everything sent so far: it answers a line typed last.
    want = f"\r\n{7000 + n}\r\n".encode()
    start = len(vb.output)
    port.write(f"\r7000+{n}\r".encode())
    end = time.monotonic() + timeout
    while want not in vb.output[start:]:
        port.read(port.in_waiting or 1)  # what the board prints must be read, as a host does
        assert vb.state == "on" and time.monotonic() < end, vb.output[-1500:]


def test_a_megabyte_of_noise_on_the_usb_prompt(make_board):
    vb = make_board(files={"/main.py": MAIN})
    end = time.monotonic() + 10
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    assert typed(vb, "await call('store', 'x')") == "'stored'"
    mark = vb.mark()
    rng = random.Random(SEED)
    sent = rounds = 0
    t0 = time.monotonic()
    with serial.Serial(vb.usb_port, timeout=0.05) as port:
        while sent < TOTAL:
            if rounds == 1:  # after a first round has loaded what noise loads (the console)
                before = _heap(vb)
            chunk = b"".join(_noise(rng, rng.randrange(1, 4096)) for _ in range(CHUNK // 2048))
            for i in range(0, len(chunk), 4096):
                port.write(chunk[i:i + 4096])
                port.read(port.in_waiting)
            sent += len(chunk)
            rounds += 1
            _sync(vb, port, rounds)
    took = time.monotonic() - t0
    print(f"fuzz: {sent} bytes (seed {SEED}) in {took:.1f} s")
    assert not [e for e in vb.events[mark:] if e.kind in ("booted", "wdt-reset", "reset")]
    assert number(vb, "await call('counter', 'get')") > 0
    assert typed(vb, "await call('store', 'x')") == "'stored'"
    after = _heap(vb)
    print(f"fuzz: heap free {before} bytes before, {after} after; resets 0")
    assert after >= before - 4096, (before, after)
    out = outstack("console", "--port", vb.usb_port, "servers")
    assert out.returncode == 0 and "counter" in out.stdout and "store" in out.stdout, out.stderr


def test_console_commands_that_are_noise_do_not_grow_the_heap(make_board):
    vb = make_board(files={"/main.py": MAIN})
    end = time.monotonic() + 10
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    vb.type(b"\x1eno-such-command\r")  # the first command loads the console: not growth
    before = _heap(vb)
    rng = random.Random(SEED)
    words = b"".join(b"\x1e%08x %d\r" % (rng.getrandbits(32), i) for i in range(3000))
    start = len(vb.output)
    vb.type(words)
    end = time.monotonic() + 60
    while vb.output[start:].count(b"unknown command") < 3000:
        assert time.monotonic() < end, vb.output[-800:]
        time.sleep(0.05)
    after = _heap(vb)
    print(f"3000 unknown console commands: heap free {before} before, {after} after")
    assert after >= before - 2048, (before, after)  # every distinct word kept would be ~60 KB
