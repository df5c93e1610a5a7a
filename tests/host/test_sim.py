"""The virtual board driven the way a user drives a real one: stock mpremote on the USB pty,
pyserial on UART1, power cuts and the watchdog played by the host."""

import random
import time

import serial

from tests.conftest import mpremote
from outstack import image

WRITER = """
import os, random
try:
    os.mkdir('/data')
except OSError:
    pass
bad = []
for name in os.listdir('/data'):
    with open('/data/' + name, 'rb') as f:
        data = f.read()
    if data != data[:1] * len(data):
        bad.append(name)
print('CHECK', 'bad:' + ','.join(bad) if bad else 'whole', len(os.listdir('/data')))
i = 0
while True:
    with open('/data/f%d' % (i % 5), 'wb') as f:
        f.write(bytes([i & 0xFF]) * random.randint(100, 9000))
    i += 1
"""


def test_file_survives_soft_reset_and_power_cut(make_board, tmp_path):
    vb = make_board()
    src = tmp_path / "note.txt"
    src.write_bytes(b"kept across power cuts\n" * 100)
    mpremote(vb.usb_port, "fs", "cp", str(src), ":note.txt")
    mark = vb.mark()
    mpremote(vb.usb_port, "soft-reset")
    assert vb.wait_for("spawn", mark).detail == "SOFT"
    vb.cut_power()
    vb.wait_for("power-off", mark)
    mark = vb.mark()
    vb.power_on()
    assert vb.wait_for("booted", mark).detail == "PWRON"
    back = mpremote(vb.usb_port, "fs", "cat", ":note.txt").stdout
    assert back.replace("\r\n", "\n") == src.read_text()
    assert "note.txt" in mpremote(vb.usb_port, "fs", "ls").stdout


def test_reset_causes_and_backup_memory(make_board):
    vb = make_board()
    ask = "from outstack import hal; print(hal.reset_cause(), hal.backup_read()[:4])"
    assert "PWRON b'\\x00\\x00\\x00\\x00'" in mpremote(vb.usb_port, "resume", "exec", ask).stdout
    mpremote(vb.usb_port, "exec", "from outstack import hal; hal.backup_write(b'keep')")
    mark = vb.mark()
    mpremote(vb.usb_port, "reset", check=False)
    vb.wait_for("booted", mark, detail="HARD")
    assert "HARD b'keep'" in mpremote(vb.usb_port, "resume", "exec", ask).stdout
    mpremote(vb.usb_port, "soft-reset")  # mpremote's own exec would soft-reset too
    assert "SOFT b'keep'" in mpremote(vb.usb_port, "resume", "exec", ask).stdout
    vb.cut_power()
    mark = vb.mark()
    vb.power_on()
    vb.wait_for("booted", mark)
    assert "PWRON b'\\x00\\x00\\x00\\x00'" in mpremote(vb.usb_port, "resume", "exec", ask).stdout


def test_soft_reset_reloads_interpreter_and_prints_banner(make_board):
    vb = make_board(files={"/main.py": "print('main ran')\n"})  # a main.py that ends
    mpremote(vb.usb_port, "exec", "marker = 42")
    assert mpremote(vb.usb_port, "resume", "exec", "print(marker)").stdout.strip() == "42"
    before = len(vb.output)
    vb.type(b"\x04")  # Ctrl-D at the friendly prompt
    vb.wait_for("booted", vb.mark() - 1)
    deadline = time.monotonic() + 10
    while b">>> " not in vb.output[before:] and time.monotonic() < deadline:
        time.sleep(0.05)
    text = vb.output[before:].decode()
    assert "MPY: soft reboot" in text and "MicroPython v1." in text and ">>> " in text
    out = mpremote(vb.usb_port, "resume", "exec", "print('marker' in globals())")
    assert out.stdout.strip() == "False"


def test_hung_loop_is_reset_by_watchdog_within_timeout(make_board):
    main = """
from outstack import hal
import time
if hal.reset_cause() != 'WDT':
    wdt = hal.Watchdog(1000)
    for i in range(5):
        wdt.feed()
        time.sleep_ms(100)
    while True:
        pass
print('back after the watchdog')
"""
    vb = make_board(files={"/main.py": main})
    armed = vb.wait_for("wdt-armed")
    fired = vb.wait_for("wdt-reset", timeout=5)
    back = vb.wait_for("booted", vb.events.index(fired))
    hung_for = back.t - vb.last_feed_before(fired)
    print(f"watchdog 1000 ms: board back {hung_for * 1000:.0f} ms after the last feed")
    assert back.detail == "WDT"
    assert hung_for >= 1.0, hung_for  # never early; how late depends on the load
    assert armed.detail == "1000"
    ask = "from outstack import hal; print(hal.reset_cause())"
    assert mpremote(vb.usb_port, "resume", "exec", ask).stdout.strip() == "WDT"


def _boot_and_check(vb, **power):
    """Power on; the board's own LittleFS mounts the image and finds every file whole
    (each file is one byte value repeated: a mix would mean a torn update)."""
    image.check(vb.image, "unix")  # an independent LittleFS mounts it too
    mark, seen = vb.mark(), len(vb.output)
    vb.power_on(**power)
    assert vb.wait_for("booted", mark).detail == "PWRON"
    deadline = time.monotonic() + 10
    while b"\r\n" not in vb.output[seen:].partition(b"CHECK")[2] and time.monotonic() < deadline:
        time.sleep(0.01)  # the whole line, not just its start
    line = vb.output[seen:].split(b"CHECK", 1)[1].split(b"\r\n")[0].decode()
    assert line.split()[0] == "whole", line
    return mark


def test_fifty_power_cuts_mid_write_leave_a_mountable_image(make_board):
    vb = make_board(files={"/main.py": WRITER}, start=False)
    rng = random.Random(2026)
    vb.start(cut_after=rng.randint(1, 400), cut_pages=rng.randint(0, 16))
    mark = 0
    for _ in range(50):
        cut = vb.wait_for("power-off", mark, timeout=30)
        assert cut.detail.startswith("cut during flash write")
        mark = _boot_and_check(vb, cut_after=rng.randint(1, 400), cut_pages=rng.randint(0, 16))
    vb.wait_for("power-off", mark)


def test_power_cuts_at_random_moments(make_board):
    vb = make_board(files={"/main.py": WRITER})
    rng = random.Random(7)
    for _ in range(10):
        time.sleep(rng.uniform(0.05, 0.4))
        mark = vb.mark()
        vb.cut_power()
        vb.wait_for("power-off", mark)
        _boot_and_check(vb)


def test_uart1_runs_at_line_rate(make_board):
    vb = make_board()
    n = 5760  # half a second of 115200 8N1
    with serial.Serial(vb.uart_port, timeout=5) as port:
        code = ("from outstack import hal; u = hal.uart(115200); "
                f"u.write(bytes(range(256)) * {n // 256} + bytes({n % 256}))")
        start = time.monotonic()
        mpremote(vb.usb_port, "exec", code)
        got = port.read(n)
        took = time.monotonic() - start
    assert len(got) == n and got[:256] == bytes(range(256))
    print(f"UART1: {n} bytes in {took:.3f} s = {n / took:.0f} B/s (line rate 11520 B/s)")
    assert took >= 0.45  # clocked at the line rate, never faster (a busy host only slows it)


def test_uart1_host_to_board(make_board):
    vb = make_board()
    with serial.Serial(vb.uart_port, timeout=5) as port:
        mpremote(vb.usb_port, "exec", "from outstack import hal; u = hal.uart(115200, timeout=2000)")
        port.write(b"hello board\n")
        out = mpremote(vb.usb_port, "resume", "exec", "print(u.readline())")
    assert out.stdout.strip() == "b'hello board\\n'"


def test_uart1_holds_a_fast_writer_back_and_loses_nothing(make_board):
    # A board that is not reading its UART holds the host's writer back (the pty fills, as
    # an adapter's buffer does): the host keeps no more than its bound, and nothing written
    # is lost once the board reads.
    import binascii
    import threading

    from outstack.sim.link import MAX_PENDING

    vb = make_board()
    data = random.Random(11).randbytes(1 << 20)
    mpremote(vb.usb_port, "exec", "from outstack import hal; u = hal.uart(4000000)")
    with serial.Serial(vb.uart_port, timeout=5) as port:
        writer = threading.Thread(target=port.write, args=(data,), daemon=True)
        writer.start()
        most = 0
        for _ in range(40):  # the board reads nothing meanwhile
            most = max(most, len(vb.uart_to_dev.pending))
            time.sleep(0.05)
        assert writer.is_alive(), "1 MB went nowhere: the host took it all"
        assert most <= MAX_PENDING + 4096, most
        code = ("import binascii\nn = c = 0\nwhile n < %d:\n d = u.read(4096)\n if d:\n"
                "  n += len(d)\n  c = binascii.crc32(d, c)\nprint('got', n, c)" % len(data))
        out = mpremote(vb.usb_port, "resume", "exec", code, timeout=120)
        writer.join(60)
    assert out.stdout.split() == ["got", str(len(data)), str(binascii.crc32(data))], out.stdout


def test_uart1_output_nobody_reads_is_lost_not_held(make_board):
    # The board's UART sends whether or not anyone reads: with nobody at the pty, its writes
    # go on at once and the host keeps a bounded tail (the rest is lost, counted).
    from outstack.sim.link import MAX_PENDING

    vb = make_board()
    code = ("from outstack import hal; u = hal.uart(4000000)\n"
            "for i in range(1024):\n u.write(bytes(1024))\nprint('wrote all')")
    out = mpremote(vb.usb_port, "exec", code, timeout=120)
    assert "wrote all" in out.stdout
    end = time.monotonic() + 30
    while vb.uart_to_pty.dropped == 0 and time.monotonic() < end:
        time.sleep(0.1)
    assert vb.uart_to_pty.dropped > 0 and len(vb.uart_to_pty.pending) <= MAX_PENDING + 4096
    kept = len(vb.uart_to_pty.pending)
    got = b""
    with serial.Serial(vb.uart_port, timeout=0.2) as port:  # opening flushes the pty's part
        end = time.monotonic() + 30
        while len(got) < kept and time.monotonic() < end:
            got += port.read(1 << 16)  # the tail the host kept comes on
    assert kept >= MAX_PENDING and got == bytes(len(got)), (kept, len(got))
    assert kept <= len(got) <= (1 << 20) - vb.uart_to_pty.dropped, (kept, len(got))


def test_wifi_fails_when_the_test_says_so(make_board):
    vb = make_board()
    code = ("from outstack import hal; w = hal.wlan(); w.active(True); "
            "w.connect('outstack', 'outstack-key'); print(w.isconnected(), w.status())")
    assert mpremote(vb.usb_port, "exec", code).stdout.split() == ["True", "3"]
    vb.set_wifi(False)
    assert mpremote(vb.usb_port, "exec", code).stdout.split() == ["False", "-2"]
