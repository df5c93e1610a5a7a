# The one place device code touches `machine`. Each board's facts come from
# outstack/board.py (installed from boards/<name>/board.py); everything above hal is portable.
import machine
from micropython import const
from outstack import board

_RP2_SCRATCH0 = const(0x4005800C)  # watchdog SCRATCH0 (RP2040 datasheet 4.7.6)
_STM32_BKP0R = const(0x40002850)  # RTC_BKP0R on STM32F4 (RM0090 26.6.20)
_MPS2_BACKUP = const(0x20000020)  # SSRAM2 words QEMU keeps over a reset (boards/mps2-an385/board.h)


def reset_cause():
    """Why the board last started: 'PWRON', 'WDT', 'HARD', 'SOFT', 'DEEPSLEEP' or 'UNKNOWN'.
    Only causes in board.RESET_CAUSES can be reported: rp2 knows just PWRON and WDT
    (a machine.reset() there shows as WDT, a soft reset keeps the previous cause)."""
    code = machine.reset_cause()
    for name in board.RESET_CAUSES:
        if getattr(machine, name + "_RESET", None) == code:
            return name
    return "UNKNOWN"


def check_watchdog(timeout_ms):
    if not 1 <= timeout_ms <= board.WDT_MAX_MS:
        raise ValueError("watchdog timeout %d ms is above the %s limit of %d ms"
                         % (timeout_ms, board.NAME, board.WDT_MAX_MS)
                         if timeout_ms > 0 else "watchdog timeout must be at least 1 ms")


class Watchdog:
    """The hardware watchdog. Once started it cannot be stopped: only feed() keeps the board up."""

    def __init__(self, timeout_ms):
        check_watchdog(timeout_ms)
        self.timeout_ms = timeout_ms
        self._wdt = machine.WDT(timeout=timeout_ms)

    def feed(self):
        self._wdt.feed()


def reset():
    machine.reset()


def unique_id():
    """The board's unique id in hex (the fleet names boards by it)."""
    from binascii import hexlify

    return hexlify(machine.unique_id()).decode()


def soft_reset():
    machine.soft_reset()


def idle():
    machine.idle()


def lightsleep(ms):
    """Sleep with clocks gated for `ms` (USB drops on rp2: battery products only)."""
    machine.lightsleep(ms)


def _backup_base():
    kind = board.BACKUP_KIND
    if kind == "mps2_noinit":
        return _MPS2_BACKUP
    return _RP2_SCRATCH0 if kind == "rp2_scratch" else _STM32_BKP0R


def backup_read():
    """The backup memory (survives resets, not power cuts): board.BACKUP_BYTES bytes."""
    n = board.BACKUP_BYTES
    if board.BACKUP_KIND == "rtc_memory":
        data = machine.RTC().memory()
        return data + bytes(n - len(data))
    base = _backup_base()
    return bytes(machine.mem32[base + (i & ~3)] >> 8 * (i & 3) & 0xFF for i in range(n))


def backup_write(data):
    n = board.BACKUP_BYTES
    if len(data) > n:
        raise ValueError("backup memory holds %d bytes on %s, not %d" % (n, board.NAME, len(data)))
    data = bytes(data) + bytes(n - len(data))
    if board.BACKUP_KIND == "rtc_memory":
        machine.RTC().memory(data)
        return
    base = _backup_base()
    for i in range(0, n, 4):
        machine.mem32[base + i] = int.from_bytes(data[i : i + 4], "little")


_adc = None
_led = None
_FPGAIO_LED = const(0x40028000)  # MPS2 FPGA IO LED0 register: bits 0-1, the user LEDs


def adc_read():
    """One reading (0..65535) of the board's analog input (board.ADC_PIN). A board without
    one (ADC_PIN None: mps2-an385) raises OSError: check has_adc() first."""
    global _adc
    if _adc is None:
        if board.ADC_PIN is None:
            raise OSError("no analog input on %s (board.ADC_PIN is None)" % board.NAME)
        _adc = machine.ADC(machine.Pin(board.ADC_PIN))
    return _adc.read_u16()


def has_adc():
    return board.ADC_PIN is not None


def led(on):
    """Drive the board's status LED (board.LED_PIN; "fpgaio": the MPS2 FPGA IO's LED0)."""
    global _led
    if board.LED_PIN == "fpgaio":
        v = machine.mem32[_FPGAIO_LED]
        machine.mem32[_FPGAIO_LED] = v | 1 if on else v & ~1
        return
    if _led is None:
        _led = machine.Pin(board.LED_PIN, machine.Pin.OUT)
    _led.value(1 if on else 0)


def timer(period_ms, callback):
    """A periodic timer whose callback runs as a soft IRQ: between two bytecodes, even
    inside a handler that never yields. Returns the machine.Timer (deinit() stops it)."""
    t = machine.Timer(getattr(board, "TIMER_ID", -1))
    t.init(mode=machine.Timer.PERIODIC, period=period_ms, callback=callback)
    return t


def uart(baudrate=115200, timeout=0):
    """The board's spare UART (UART1 on every supported board) at `baudrate`, 8N1; OSError
    where the firmware has no UART driver."""
    if not hasattr(machine, "UART"):
        raise OSError("no machine.UART on %s" % board.NAME)
    return machine.UART(board.UART1[0], baudrate=baudrate, timeout=timeout)


def wlan():
    """The station interface, or None on a board without Wi-Fi."""
    try:
        import network
    except ImportError:
        return None
    wlan = getattr(network, "WLAN", None)  # pyboard v1.1: `network` exists, without WLAN
    return wlan(network.STA_IF) if wlan else None
