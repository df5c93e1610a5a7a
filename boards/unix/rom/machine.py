# `machine` of the virtual board: the parts of the MicroPython machine API a board has,
# played by the host process (outstack sim) over the control line. Device code reaches it
# only through outstack.hal, exactly as on a real board.
import io
import select
import socket
import sys
import time
import _hw

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_CAUSES = {"PWRON": 1, "HARD": 2, "WDT": 3, "DEEPSLEEP": 4, "SOFT": 5}
IDLE = 1  # wake_reason values
_GET_FILENO = 10  # stream ioctl: lets select.poll wait on the real socket, no busy polling


def reset_cause():
    return _CAUSES[_hw.cfg["cause"]]


def reset():
    _hw.tell("reset HARD")
    _hw.halt()


def soft_reset():
    # As on a board: main.py runs again only if the reset came from the friendly REPL.
    sys.stdout.write("MPY: soft reboot\n")
    _hw.tell("soft " + _hw.mode)
    _hw.halt()


def bootloader():
    raise OSError("virtual board: there is no bootloader to enter")


def freq(hz=None):
    if hz is not None:
        raise ValueError("virtual board: the clock is fixed")
    return _hw.cfg["facts"]["FREQ"]


def unique_id():
    return _hw.cfg["uid"].encode()[:8]


def idle():
    time.sleep_ms(1)


def lightsleep(ms=None):
    time.sleep_ms(ms if ms is not None else 1000)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class WDT:
    # One hardware watchdog: once started it cannot be stopped, only fed (as on rp2/stm32).
    def __init__(self, id=0, timeout=5000):
        limit = _hw.cfg["facts"]["WDT_MAX_MS"]
        if not 1 <= timeout <= limit:
            raise ValueError(
                "WDT timeout %d ms is outside 1..%d ms on %s" % (timeout, limit, _hw.cfg["board"])
            )
        self.timeout = timeout
        _hw.tell("wdt %d" % timeout)

    def feed(self):
        _hw.feed()


class RTC:
    # Backup memory: survives every reset but a power cut; size is the board's.
    def __init__(self, id=0):
        self.size = _hw.cfg["facts"]["BACKUP_BYTES"]

    def memory(self, data=None):
        f = _hw.backup
        if data is None:
            f.seek(0)
            head = f.read(2)
            n = head[0] | head[1] << 8 if len(head) == 2 else 0
            return f.read(min(n, self.size)) if n else b""
        if len(data) > self.size:
            raise ValueError("backup memory holds %d bytes, not %d" % (self.size, len(data)))
        f.seek(0)
        f.write(bytes((len(data) & 0xFF, len(data) >> 8)) + bytes(data))


class UART(io.IOBase):
    # UART1 is wired to the host's second pty; the host clocks bytes out at the line rate.
    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, **kw):
        if id not in _hw.cfg["facts"]["UART_IDS"]:
            raise ValueError("UART(%d) does not exist on %s" % (id, _hw.cfg["board"]))
        self.id = id
        self.s = None
        self.init(baudrate, bits, parity, stop, **kw)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, timeout=0, **kw):
        if self.s is None:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.connect(_hw.unix_addr(_hw.cfg["uart%d" % self.id]))
        self.baudrate = baudrate
        self.timeout = timeout
        self.poller = select.poll()
        self.poller.register(self.s, select.POLLIN)
        _hw.tell("uart %d %d %d" % (self.id, baudrate, 1 + bits + (parity is not None) + stop))

    def deinit(self):
        if self.s:
            self.s.close()
            self.s = None

    def any(self):
        return 1 if self.poller.poll(0) else 0

    def _wait(self):
        return bool(self.poller.poll(self.timeout))

    def read(self, n=-1):
        if not self._wait():
            return None
        self.s.setblocking(False)
        try:
            return self.s.recv(4096 if n is None or n < 0 else n) or None
        except OSError:
            return None
        finally:
            self.s.setblocking(True)

    def readinto(self, buf, n=None):
        data = self.read(len(buf) if n is None else n)
        if not data:
            return None
        buf[: len(data)] = data
        return len(data)

    def readline(self):
        line = b""
        while not line.endswith(b"\n"):
            c = self.read(1)
            if not c:
                break
            line += c
        return line or None

    def write(self, buf):
        self.s.write(buf)
        return len(buf)

    def flush(self):
        pass

    def txdone(self):
        return True

    def ioctl(self, req, arg):
        if req == _GET_FILENO:
            return self.s.fileno()
        return 0


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = 0 if value is None else value

    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0

    def on(self):
        self._v = 1

    def off(self):
        self._v = 0

    def toggle(self):
        self._v ^= 1

    def irq(self, handler=None, trigger=0, hard=False):
        self.handler = handler


class ADC:
    # The signal generator of the virtual board: a slow triangle wave with a little noise.
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        t = time.ticks_ms() % 20000
        tri = t if t < 10000 else 20000 - t
        return min(65535, tri * 65535 // 10000 + (time.ticks_us() & 0xFF))  # saturates, as an ADC does


from _timer import Timer  # noqa: E402,F401  a thread plays the timer hardware
import _mpu_model  # noqa: E402  the MPU registers, each write checked by a model

mem8 = _mpu_model.Mem(1)
mem16 = _mpu_model.Mem(2)
mem32 = _mpu_model.Mem(4)
