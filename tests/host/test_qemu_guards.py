"""The hardware guards on emulated silicon (mps2-an385: a Cortex-M3 under QEMU, its PMSAv7 MPU
and CMSDK watchdog), driven as in the field: a server that writes the OTA keys and commit
pointer area or the stack guard gets a real MemManage fault, a server whose handler hangs
gets a real watchdog reset; the board records what happened (kind, address, server), comes back, and after three
crash-resets boots in safe mode with the culprit quarantined; `outstack crashlog` reads it.

Skipped, with the reason, where the ARM toolchain, qemu-system-arm or a MicroPython source tree
is missing (as tests/host/test_qemu.py)."""

import json
import re
import time

import pytest

from outstack import boards, firmware, image
from outstack.sim.qemu import QemuBoard, qemu_binary

from tests.conftest import COUNTER_MAIN, outstack, text, typed, wait_text

BOARD = "mps2-an385"
_why = firmware.missing() or (None if qemu_binary() else
                              "qemu-system-arm is not installed: apt-get install qemu-system-arm")
if _why:
    pytest.skip(f"no QEMU board here: {_why}", allow_module_level=True)

FACTS = boards.load(BOARD)
OTA_AREA = FACTS["MPU_OTA"][0]
STACK_GUARD = FACTS["MPU_STACK"]  # 32 B no access below the C stack

COMMON = """
import machine, time
print("main.py at", time.ticks_ms(), "ms")  # virtual time since the reset
""" + COUNTER_MAIN

WILD = COMMON + """
class Wild(Server):
    def init(self, config, state):
        self.after(200, "poke")

    def handle_cast(self, msg, arg):
        machine.mem32[%d] = 0x0BAD  # a guarded address

TABLE = {"ota": {"factory": Counter, "essential": True},
         "wild": {"factory": Wild},
         "debug": {"factory": Counter, "essential": True}}
System(TABLE).run_forever()
"""

HANG = COMMON + """
class Hang(Server):
    def init(self, config, state):
        self.after(300, "spin")

    def handle_cast(self, msg, arg):
        %s
        while True:
            pass

TABLE = {"ota": {"factory": Counter, "essential": True},
         "hang": {"factory": Hang},
         "debug": {"factory": Counter, "essential": True}}
System(TABLE).run_forever()
"""
CONFIG = json.dumps({"watchdog_ms": 1000, "safe_mode": {"crashes": 3, "window_ms": 600000}})


@pytest.fixture(scope="module")
def elf():
    return firmware.build(BOARD)


@pytest.fixture
def boot(elf, tmp_path):
    made = []

    def start(main):
        (tmp_path / "main.py").write_text(main)
        (tmp_path / "config.json").write_text(CONFIG)
        img = tmp_path / "flash.img"
        image.build(img, BOARD, [(str(tmp_path / "main.py"), "/main.py"),
                                 (str(tmp_path / "config.json"), "/config.json")])
        qb = QemuBoard(img, BOARD, firmware=elf)
        made.append(qb)
        qb.start()
        return qb

    yield start
    for qb in made:
        qb.stop()


def _wait(qb, needle, start=0):
    return wait_text(qb, needle, start, timeout=120.0)  # a QEMU board boots slower


def _after_fatal(qb):
    """The first whole "main.py at N ms" line after the fault report (a line can arrive in
    chunks: its number after "main.py at ")."""
    line = re.compile(r"FATAL.*?main\.py at (\d+) ms\r\n", re.S)
    end = time.monotonic() + 120
    while not (seen := line.search(text(qb))):
        assert time.monotonic() < end, f"main.py did not start after the fault:\n{text(qb)[-3000:]}"
        time.sleep(0.02)
    return seen


def _safe_mode_serves(qb, culprit):
    """Safe mode after three crash-resets: the culprit quarantined, the essentials serving."""
    _wait(qb, "SAFE MODE")
    start = text(qb).index("SAFE MODE")
    _wait(qb, ">>> ", start)
    assert f"quarantined: {culprit}" in text(qb, start)
    n1 = int(typed(qb, "await call('ota', 'n')", timeout=60))
    n2 = int(typed(qb, "await call('ota', 'n')", timeout=60))
    assert n2 > n1 and int(typed(qb, "await call('debug', 'n')", timeout=60)) > 0


def _crashlog(qb):
    log = outstack("crashlog", "--port", qb.usb_port)
    assert log.returncode == 0, log.stderr
    assert "after 4 crash-resets" not in text(qb)  # the CLI's soft reboot is no crash-reset
    return log.stdout


@pytest.mark.parametrize("addr", [OTA_AREA, STACK_GUARD], ids=["ota-area", "stack-guard"])
def test_mpu_fault_in_a_server_is_recorded_with_its_address_and_server(boot, addr):
    qb = boot(WILD % addr)
    first = qb.wait_for("crash", timeout=120)
    back = qb.wait_for("reset", qb.events.index(first))
    print(f"MemManage fault to reset: {(back.t - first.t) * 1000:.1f} ms host time")
    took = _after_fatal(qb).group(1)
    print(f"reset to main.py again: {took} ms virtual time")
    # The firmware's report: MemManage (exception 4), MMFAR the address, the server number.
    fatal = text(qb).split("FATAL: fault ", 1)[1].split("\r\n", 1)[0]
    assert fatal.startswith("4 ") and f"mmfar={addr:08x}" in fatal, fatal
    assert int(fatal.split("cfsr=", 1)[1][:8], 16) & 0x82 == 0x82  # DACCVIOL, MMARVALID

    _safe_mode_serves(qb, "wild")
    assert len([e for e in qb.events if e.kind == "crash"]) == 3  # then no more
    log = _crashlog(qb)
    print(log)
    assert "last crash: MemManage (reset cause HARD)" in log, log
    assert "server       wild" in log and f"address      0x{addr:08x}" in log, log
    assert "access to 0x%08x" % addr in log, log


def _hung_handler_resets_by_watchdog(boot, masked):
    qb = boot(HANG % ("machine.disable_irq()  # no soft IRQ can see it" if masked else "pass"))
    bite = qb.wait_for("wdt-bite", timeout=120)
    reset = qb.wait_for("wdt-reset", qb.events.index(bite))
    print(f"watchdog NMI to reset: {(reset.t - bite.t) * 1000:.1f} ms host time")
    _safe_mode_serves(qb, "hang")
    log = _crashlog(qb)
    print(log)
    return log


def test_hung_handler_ends_in_a_real_watchdog_reset_naming_the_server(boot):
    # The guard's soft-IRQ timer sees the runaway first and writes the record; the CMSDK
    # watchdog then resets the board, and the board's NMI handler saw the same server.
    log = _hung_handler_resets_by_watchdog(boot, masked=False)
    assert "last crash: runaway (reset cause WDT)" in log, log
    assert "server       hang" in log and "message      spin" in log, log
    assert "board saw    watchdog" in log, log


def test_handler_hung_with_interrupts_off_is_named_by_the_board(boot):
    # No soft IRQ runs: only the watchdog NMI and the running-server word name the culprit.
    log = _hung_handler_resets_by_watchdog(boot, masked=True)
    assert "last crash: watchdog (reset cause WDT)" in log, log
    assert "server       hang" in log, log


def _answer(qb, line, timeout=60.0):
    """Type `line` at the demo's live prompt; its answer, past any status line in between."""
    start = len(qb.output)
    qb.type(line.encode() + b"\r")
    end = time.monotonic() + timeout
    while True:
        lines = text(qb, start).split("\r\n")
        echo = [i for i, seen in enumerate(lines) if seen.endswith(line)]
        if echo:
            after = [x for x in lines[echo[0] + 1 : -1]
                     if not x.lstrip("> ").startswith("status: ")]
            if after:
                return after[0]
        assert time.monotonic() < end, f"no answer to {line!r}:\n{text(qb, start)}"
        time.sleep(0.05)


def test_the_demo_runs_without_safe_mode_and_blinks_the_fpgaio_led(elf, tmp_path):
    from tests.conftest import DEMO

    img = tmp_path / "flash.img"
    image.build(img, BOARD, image.layout(BOARD, DEMO))
    qb = QemuBoard(img, BOARD, firmware=elf)
    try:
        qb.start()
        _wait(qb, "status: up")
        start = text(qb).index("status: up") + 1
        _wait(qb, "status: up", start)  # a second status line: the servers keep running
        said = text(qb)
        assert "SAFE MODE" not in said and "crashed" not in said, said
        assert "no OTA over UART1" not in said  # this firmware drives UART1 (machine_uart_board.c)
        assert "TCP port 8266 not available" in said  # and says once that it has no sockets
        assert [e.kind for e in qb.events] == ["spawn"]  # no reset of any kind
        led = "__import__('machine').mem32[0x40028000] & 1"  # FPGA IO LED0
        assert _answer(qb, "__import__('outstack.hal').hal.led(True) or " + led) == "1"
        assert _answer(qb, "__import__('outstack.hal').hal.led(False) or " + led) == "0"
        assert _answer(qb, "await call('sensor', 'stats')") == "(0, 0)"  # no ADC: no readings

        # The OTA trust anchor in the MPU-guarded area: written only through the window.
        ota = "__import__('outstack.ota.apply').ota.apply"
        srv = "kernel.names['ota'].server"
        assert _answer(qb, f"print({ota}.anchor({srv}))") == "None"  # nothing committed yet
        assert _answer(qb, f"{ota}.anchor({srv}, 7) or {ota}.anchor({srv})") == "(7, [])"
        assert _answer(qb, f"{ota}._floor({srv}, {{'seq': 3}})") == "7"  # a file turned back
        # Armed at boot: the MPU on, the 32 B stack guard at 0x3fb000 (no access, XN).
        assert _answer(qb, "print(system.guards.mpu.enabled(), hex(system.guards.stack_low), "
                           "hex(system.guards.mpu.region(7)[1]))") == "True 0x3fb020 0x10030009"
        ap = "system.guards.mpu.region(6)[1] >> 24 & 7"  # RASR.AP of the OTA region
        assert _answer(qb, ap) == "6"  # read-only again after the write
    finally:
        qb.stop()
