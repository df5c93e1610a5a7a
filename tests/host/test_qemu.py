"""Real firmware on emulated silicon: the mps2-an385 board (Cortex-M3 under QEMU) with the
framework frozen in, built by `make firmware BOARD=mps2-an385` (cached in build/firmware/) and
driven through its USB REPL pty by stock mpremote, as a user drives a board.

Skipped, with the reason, where the ARM toolchain, qemu-system-arm or a MicroPython source tree
is missing (outstack.firmware.missing() says how to get each)."""

import signal
import subprocess
import time

import pytest

from outstack import firmware, image
from outstack.sim.qemu import QemuBoard

from tests.conftest import BIN, mpremote, need, one_line_error, outstack, qemu_why, typed

BOARD = "mps2-an385"
need(qemu_why(), "QEMU board")


@pytest.fixture(scope="module")
def elf():
    return firmware.build(BOARD)


@pytest.fixture
def qb(elf, tmp_path):
    board = QemuBoard(tmp_path / "flash.img", BOARD, firmware=elf, blank=True)
    board.start()
    board.wait_for("booted", timeout=60)
    yield board
    board.stop()


def run(qb, code):
    """What `code` printed on the board, run by stock mpremote over the USB REPL pty."""
    return mpremote(qb.usb_port, "exec", code).stdout.strip()


def reset_by(qb, line, cause):
    """Type `line` at the prompt; wait until the board has come back with `cause` (as the
    engine tells it; None: any)."""
    mark, start = qb.mark(), len(qb.output)
    qb.type(line.encode() + b"\r\r")
    try:
        qb.wait_for("booted", since=mark, timeout=60, detail=cause)
    except TimeoutError as e:
        raise AssertionError(f"{e}\noutput: {bytes(qb.output[start:])!r}") from None
    return qb.events[mark:]


def test_framework_is_frozen_and_imports(qb):
    out = run(qb, "import os, outstack.kernel, outstack.server, outstack.supervisor\n"
                  "print(os.listdir('/'), outstack.kernel.__name__)")
    assert out == "[] outstack.kernel"  # nothing on the flash: the framework is in the firmware


def test_asyncio_runs(qb):
    code = ("import asyncio\n"
            "async def main():\n"
            "    ev, seen = asyncio.Event(), []\n"
            "    async def waiter():\n"
            "        await ev.wait()\n"
            "        seen.append('woken')\n"
            "    t = asyncio.create_task(waiter())\n"
            "    await asyncio.sleep_ms(20)\n"
            "    ev.set()\n"
            "    await t\n"
            "    return seen\n"
            "print(asyncio.run(main()))")
    assert run(qb, code) == "['woken']"


def test_power_on_cause_and_machine_reset_is_a_real_reset(qb):
    assert run(qb, "import machine; print(machine.reset_cause() == machine.PWRON_RESET)") == "True"
    reset_by(qb, "import machine; machine.reset()", "SOFT")
    out = run(qb, "from outstack import hal; print(hal.reset_cause())")
    assert out == "SOFT"


def test_hung_code_ends_in_a_watchdog_reset(qb):
    events = reset_by(qb, "import machine; w = machine.WDT(timeout=300)\rwhile True: pass", "WDT")
    assert [e.kind for e in events if e.kind in ("wdt-bite", "wdt-reset")] == ["wdt-bite", "wdt-reset"]
    assert run(qb, "from outstack import hal; print(hal.reset_cause())") == "WDT"


def test_fault_reports_its_address_and_resets(qb):
    events = reset_by(qb, "import machine; machine.mem32[0x30000000] = 1", "HARD")
    assert "crash" in [e.kind for e in events]
    # The fault record board.c keeps over the reset: kind (5: BusFault) and the address (BFAR).
    out = run(qb, "import machine; print(machine.mem32[0x20000008], hex(machine.mem32[0x2000001c]))")
    assert out == "5 0x30000000"


def test_ctrl_c_interrupts_running_code(qb):
    start = len(qb.output)
    qb.type(b"exec('print(\\'looping\\')\\nwhile True: pass')\r")
    deadline = time.monotonic() + 60
    while b"looping\r\n" not in qb.output[start:]:  # printed: Ctrl-C now interrupts it
        assert time.monotonic() < deadline, bytes(qb.output[start:])
        time.sleep(0.02)
    qb.type(b"\x03")
    assert typed(qb, "print('alive')", timeout=60) == "alive"
    assert b"KeyboardInterrupt" in qb.output[start:]


def test_flash_keeps_files_over_a_power_cut(qb, tmp_path):
    src = tmp_path / "note.txt"
    src.write_text("kept\n")
    mpremote(qb.usb_port, "fs", "cp", str(src), ":note.txt")
    assert "note.txt" in mpremote(qb.usb_port, "fs", "ls").stdout
    qb.cut_power()
    assert image.read_file(qb.image, BOARD, "note.txt") == b"kept\n"  # the host's image has it
    mark = qb.mark()
    qb.power_on()
    qb.wait_for("booted", since=mark, timeout=60, detail="PWRON")
    assert mpremote(qb.usb_port, "fs", "cat", ":note.txt").stdout == "kept\n"


def test_backup_memory_survives_a_reset_not_a_power_cut(qb):
    run(qb, "from outstack import hal; hal.backup_write(b'kept over reset')")
    reset_by(qb, "import machine; machine.reset()", "SOFT")
    assert run(qb, "from outstack import hal; print(hal.backup_read())") == "b'kept over reset\\x00'"
    qb.cut_power()
    mark = qb.mark()
    qb.power_on()
    qb.wait_for("booted", since=mark, timeout=60, detail="PWRON")
    assert run(qb, "from outstack import hal; print(hal.backup_read())") == "b'%s'" % ("\\x00" * 16)


def test_outstack_sim_runs_the_qemu_board_on_a_host_built_image(elf, tmp_path):
    img = tmp_path / "flash.img"
    one_line_error(outstack("sim", str(img), "--board", BOARD, "--no-attach"), "does not exist")
    note = tmp_path / "hello.txt"
    note.write_text("made on the host\n")
    image.build(img, BOARD, [(str(note), "/hello.txt")])  # LittleFS written by the unix port
    sim = subprocess.Popen([str(BIN / "outstack"), "sim", str(img), "--board", BOARD,
                            "--no-attach"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = b""
        while b"USB REPL: " not in seen or b"\n" not in seen.split(b"USB REPL: ", 1)[1]:
            chunk = sim.stdout.read1(4096)
            assert chunk, seen
            seen += chunk
        port = seen.split(b"USB REPL: ", 1)[1].split()[0].decode()
        assert mpremote(port, "exec", "import sys; print(sys.platform)").stdout.strip() == "qemu"
        assert mpremote(port, "fs", "cat", ":hello.txt").stdout == "made on the host\n"
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=60)


def write_or_cut(qb, text):
    """Write data.txt at the prompt; True if it was written, False if the power failed."""
    mark, start = qb.mark(), len(qb.output)
    qb.type(b"exec(\"with open('data.txt', 'w') as f: f.write(%r)\\nprint('wr' + 'itten')\")\r"
            % text.encode())
    deadline = time.monotonic() + 60
    while b"written" not in qb.output[start:]:
        if any(e.kind == "power-off" for e in qb.events[mark:]):
            return False
        assert time.monotonic() < deadline, bytes(qb.output[start:])
        time.sleep(0.02)
    return True


def power_on(qb, **cut):
    mark = qb.mark()
    qb.power_on(**cut)
    qb.wait_for("booted", since=mark, timeout=60)


def test_power_cut_at_each_flash_write_leaves_the_old_or_the_new_file(qb):
    old, new = "old " * 300, "new " * 400
    assert write_or_cut(qb, old)
    cuts = 0
    for n in range(1, 40):
        power_on(qb, cut_after=n, cut_pages=n % 5)
        if write_or_cut(qb, new):
            break  # the write needs fewer than n flash writes: each one has been cut once
        cuts += 1
        assert qb.events[-1].detail == f"cut during flash write {n}"
        held = image.read_file(qb.image, BOARD, "data.txt").decode()
        assert held in (old, new), (n, held[:40])
        if held == new:
            power_on(qb)
            assert write_or_cut(qb, old)
    assert cuts >= 3  # the write took several flash writes, and each was cut once
    power_on(qb)
    assert mpremote(qb.usb_port, "fs", "cat", ":data.txt").stdout == new


def test_mpremote_run_soft_reset_and_mount_work_as_on_a_board(qb, tmp_path):
    script = tmp_path / "script.py"
    script.write_text("print('ran', 6 * 7)\n")
    assert mpremote(qb.usb_port, "run", str(script)).stdout == "ran 42\n"
    mpremote(qb.usb_port, "soft-reset")
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello_mount.py").write_text("print('from the host', 'üñí')\n")
    out = mpremote(qb.usb_port, "mount", str(share), "exec", "import hello_mount").stdout
    assert out.endswith("from the host üñí\n"), out


def test_sleep_frequency_and_id(qb):
    code = ("import machine, time\n"
            "t = time.ticks_ms(); machine.lightsleep(50); slept = time.ticks_diff(time.ticks_ms(), t)\n"
            "print(slept >= 50, machine.freq(), machine.unique_id())")
    assert run(qb, code) == "True 25000000 b'MPS2AN385'"
    reset_by(qb, "import machine; machine.deepsleep(10)", None)  # the engine cannot tell it
    assert run(qb, "from outstack import hal; print(hal.reset_cause())") == "DEEPSLEEP"


def test_machine_timer_calls_back_periodically(qb):
    code = ("import machine, time\n"
            "hits = []\n"
            "t = machine.Timer(-1, period=20, callback=lambda t: hits.append(1))\n"
            "time.sleep_ms(210)\n"
            "t.deinit()\n"
            "n = len(hits)\n"
            "time.sleep_ms(60)\n"
            "print(9 <= n <= 11, len(hits) == n)")
    assert run(qb, code) == "True True"


def test_a_soft_reset_drops_running_timers(qb):
    run(qb, "import machine; t = machine.Timer(-1, period=5, callback=lambda t: None)")
    mpremote(qb.usb_port, "soft-reset")
    assert run(qb, "import gc; gc.collect(); print('alive')") == "alive"


def test_a_projects_own_app_is_frozen_into_its_firmware(tmp_path):
    """`outstack firmware` in a user's project freezes that project's modules (not this
    repository's demo) beside the framework: a board with an empty flash imports them."""
    assert outstack("new", "myapp", cwd=tmp_path).returncode == 0
    proj = tmp_path / "myapp"
    (proj / "firmware" / "app" / "extra.py").write_text("WHO = 'mine'\n")
    r = outstack("firmware", "--board", BOARD, cwd=proj, timeout=900)
    assert r.returncode == 0, r.stderr
    elf = r.stdout.split()[0]
    assert elf.endswith("firmware.elf") and elf != str(firmware.build(BOARD))
    board = QemuBoard(tmp_path / "flash.img", BOARD, firmware=elf, blank=True)
    board.start()
    try:
        board.wait_for("booted", timeout=60)
        out = run(board, "import os, app.extra, app.hello\n"
                         "print(os.listdir('/'), app.extra.WHO, app.hello.Hello.__name__)\n"
                         "try:\n import sensor\nexcept ImportError:\n print('no demo')")
        assert out.splitlines() == ["[] mine Hello", "no demo"]
    finally:
        board.stop()
