# Device tests of outstack.hal on the virtual board (run inside MicroPython).
from outstack import hal, board
from _runner import Skip


def needs(what, present):
    if not present:  # mps2-an385: no UART1 driver, no Wi-Fi, no network stack
        raise Skip("needs %s: %s has none" % (what, board.NAME))


def _has_socket():
    try:
        import socket  # noqa: F401
    except ImportError:
        return False
    return True


def test_board_facts_installed():
    # the unix board plays an RP2040's limits; mps2-an385 has the CMSDK watchdog's
    assert (board.NAME, board.WDT_MAX_MS) in (("unix", 8388), ("mps2-an385", 171798))


def test_first_boot_is_power_on():
    assert hal.reset_cause() == "PWRON"


def test_backup_memory_round_trip():
    hal.backup_write(b"crash!")
    data = hal.backup_read()
    assert len(data) == board.BACKUP_BYTES
    assert data.startswith(b"crash!")
    assert data[6:] == bytes(board.BACKUP_BYTES - 6)


def test_backup_memory_rejects_oversize():
    try:
        hal.backup_write(bytes(board.BACKUP_BYTES + 1))
    except ValueError as e:
        assert "holds %d bytes" % board.BACKUP_BYTES in str(e)
    else:
        raise AssertionError("oversize backup write was accepted")


def test_watchdog_above_limit_names_the_limit():
    try:
        hal.Watchdog(board.WDT_MAX_MS + 1)
    except ValueError as e:
        assert "limit of %d ms" % board.WDT_MAX_MS in str(e), str(e)
    else:
        raise AssertionError("watchdog accepted a timeout above the board limit")


def test_uart1_loops_nothing_back_when_idle():
    needs("a UART1 driver (machine.UART)", hasattr(__import__("machine"), "UART"))
    u = hal.uart(115200)
    assert u.any() == 0
    assert u.read(10) is None


def test_wifi_connects_to_the_access_point_in_range():
    needs("Wi-Fi", hal.wlan() is not None)
    w = hal.wlan()
    w.active(True)
    w.connect("outstack", "wrong-key")
    assert not w.isconnected()
    assert w.status() == -3  # STAT_WRONG_PASSWORD
    w.connect("outstack", "outstack-key")
    assert w.isconnected()
    assert w.ifconfig()[0] == "127.0.0.1"


async def test_sockets_are_the_hosts_loopback():
    needs("sockets", _has_socket())
    import asyncio
    import random

    async def serve(reader, writer):
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    port = random.randint(20000, 40000)
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    await writer.drain()
    assert await reader.readline() == b"PING\n"
    writer.close()
    server.close()
