# The Cortex-M MPU (PMSAv6/PMSAv7) through machine.mem32: regions are checked by mpu_enc,
# written with the MPU off and interrupts masked, and only by holders of the MpuRight that
# issue_right() makes once at boot. The guards shipped here: a read-only window (the OTA keys
# and slot pointer) opened only by the OTA commit path, and a no-access stack guard.
import machine
from micropython import const
from outstack import board
from outstack.errors import ConfigError, NotPermitted
from outstack.hal import mpu_enc as enc

_TYPE = const(0xE000ED90)  # MPU_TYPE: IREGION [23:16], DREGION [15:8], SEPARATE [0]
_CTRL = const(0xE000ED94)  # MPU_CTRL: PRIVDEFENA [2], HFNMIENA [1], ENABLE [0]
_RNR = const(0xE000ED98)  # MPU_RNR: REGION [7:0]
_RBAR = const(0xE000ED9C)  # MPU_RBAR: ADDR [31:N], VALID [4], REGION [3:0]
_RASR = const(0xE000EDA0)  # MPU_RASR: XN, AP, TEX, S, C, B, SRD, SIZE, ENABLE
_ENABLE = const(1)
_PRIVDEFENA = const(4)
_BOARD = "board"  # default argument: take the fact from outstack/board.py
OTA_REGION = 6  # the highest-numbered region wins where regions overlap: guards sit on top
STACK_REGION = 7

# Where guards may go, (base, bytes) per MCU. RP2040: 2 MiB XIP flash, 264 KiB SRAM
# (datasheet 2.2); STM32F405: 1 MiB flash, 128 KiB SRAM, 64 KiB CCM (RM0090 2.3). The
# virtual board plays an RP2040.
MAPS = {
    "rp2040": {"flash": (0x10000000, 0x200000), "sram": (0x20000000, 0x42000)},
    "stm32f405": {"flash": (0x08000000, 0x100000), "sram": (0x20000000, 0x20000),
                  "ccm": (0x10000000, 0x10000)},
}
MAPS["unix"] = MAPS["rp2040"]
# The AN385 as QEMU has it: SSRAM1 holds code, data, heap and stack; SSRAM2 the noinit words;
# PSRAM the flash (boards/mps2-an385/README.md).
MAPS["cortex-m3"] = {"sram": (0x00000000, 0x400000), "sram2": (0x20000000, 0x400000),
                     "flash": (0x21000000, 0x1000000)}

# DSB SY; ISB SY (encoding T1 in both ARMs: 0xF3BF 0x8F4F, 0xF3BF 0x8F6F) after an MPU change.
_SYNC = "@micropython.asm_thumb\ndef f():\n    data(2, 0xF3BF, 0x8F4F, 0xF3BF, 0x8F6F)\n"


class MpuRight:
    # The right to change the MPU: only the one token issue_right() made counts (by identity).
    pass


_right = None


def issue_right():
    """The MpuRight of this boot, made once: System hands it to what may change the MPU
    (the boot guards, the OTA commit path). A second call fails: ask the holder instead."""
    global _right
    if _right is not None:
        raise NotPermitted("the MPU right was already issued this boot: get it from its holder")
    _right = MpuRight()
    return _right


def _check(right):
    if right is None or right is not _right:
        raise NotPermitted("changing the MPU needs the MpuRight issued at boot "
                           "(mpu.issue_right()): pass the token System handed you")


def _arch(arch):
    return getattr(board, "MPU", None) if arch == _BOARD else arch


def available(arch=_BOARD):
    """True where this framework can drive the MPU; elsewhere only the software policy guards."""
    return _arch(arch) in ("armv6m", "armv7m")


def memory_map(mcu=None):
    return MAPS.get(board.MCU if mcu is None else mcu, {})


def _make_sync():
    # The inline assembler exists on Thumb ports only and mpy-cross refuses it for the others,
    # so it is compiled here from source; where it is missing (unix, no compiler): no barrier.
    ns: dict = {}
    try:
        exec(_SYNC, ns)
        return ns["f"]
    except Exception:
        return None


class Mpu:
    """The MPU of the core running this code. Reading it is free; changing it needs the right."""

    def __init__(self, arch=_BOARD, mem=None, mcu=None):
        self.arch = _arch(arch)
        enc.rules(self.arch)  # no MPU, or one we cannot drive: say so before touching registers
        self.map = memory_map(mcu)
        self._mem = machine.mem32 if mem is None else mem
        t = self._mem[_TYPE]
        self.regions = t >> 8 & 0xFF
        if not self.regions or t & 1:
            raise ConfigError("MPU_TYPE reads 0x%08x: this chip was built without a unified "
                              "MPU; the software policy applies" % t)
        self._sync = _make_sync()

    def set_region(self, right, number, base, size, access="rw", xn=False, srd=0,
                   mem="normal_wb", shareable=False):
        """Program and enable region `number`; returns (RBAR, RASR) as written."""
        _check(right)
        rbar, rasr = enc.encode(self.arch, number, base, size, access, xn, srd, mem,
                                shareable, self.regions)
        self._program(number, rbar, rasr)
        return rbar, rasr

    def clear_region(self, right, number):
        _check(right)
        enc.check_number(number, self.regions)
        self._program(number, 0, 0)

    def enable(self, right, background=True):
        """MPU on. background (PRIVDEFENA): privileged code keeps the default map outside the
        regions. HFNMIENA stays 0, so HardFault and NMI handlers run unguarded and can report."""
        _check(right)
        self._write_ctrl(_ENABLE | (_PRIVDEFENA if background else 0))

    def disable(self, right):
        _check(right)
        self._write_ctrl(0)

    def enabled(self):
        return bool(self._mem[_CTRL] & _ENABLE)

    def region(self, number):
        """(RBAR, RASR) of region `number` as the MPU reads them back (RBAR.VALID reads 0)."""
        enc.check_number(number, self.regions)
        state = machine.disable_irq()
        try:
            self._mem[_RNR] = number  # mem32 reads signed on 32-bit ports: make them unsigned
            return self._mem[_RBAR] & 0xFFFFFFFF, self._mem[_RASR] & 0xFFFFFFFF
        finally:
            machine.enable_irq(state)

    def _write_ctrl(self, value):
        self._mem[_CTRL] = value
        self._barrier()

    def _program(self, number, rbar, rasr):
        # MPU off and interrupts masked: nothing runs under a half-written region.
        state = machine.disable_irq()
        try:
            ctrl = self._mem[_CTRL]
            self._mem[_CTRL] = 0
            self._mem[_RNR] = number
            self._mem[_RASR] = 0  # region off before its base moves: a base must suit its size
            if rasr:
                self._mem[_RBAR] = rbar
                self._mem[_RASR] = rasr
            self._write_ctrl(ctrl)
        finally:
            machine.enable_irq(state)

    def _barrier(self):
        if self._sync is not None:
            self._sync()


def _check_in_map(mpu, base, size, kinds):
    areas = [mpu.map[k] for k in kinds if k in mpu.map]
    for lo, n in areas:
        if lo <= base and base + size <= lo + n:
            return
    if areas:
        raise ValueError("0x%08x..0x%08x is outside the %s of this board: %s"
                         % (base, base + size, "/".join(kinds),
                            ", ".join("0x%08x..0x%08x" % (lo, lo + n) for lo, n in areas)))


class Window:
    """An area (the OTA keys and slot pointer) that one MPU region keeps read-only and
    execute-never; only `with window.opened(right):` (the OTA commit path) may write it.
    The area must be exactly one region, subregions allowed (see mpu_enc.cover)."""

    def __init__(self, mpu, right, addr, size, number=OTA_REGION):
        self.mpu = mpu
        self.number = number
        self.base, self.size, self.srd = enc.cover(addr, size, mpu.arch)
        _check_in_map(mpu, addr, size, ("sram", "ccm", "flash", "sram2"))
        self._right = None
        self._set(right, "ro")

    def opened(self, right):
        """The context manager that makes the area writable while it is open."""
        _check(right)
        self._right = right
        return self

    def __enter__(self):
        self._set(self._right, "rw")  # fails with NotPermitted unless opened(right) came first
        return self

    def __exit__(self, *exc):
        right, self._right = self._right, None
        self._set(right, "ro")
        return False

    def _set(self, right, access):
        self.mpu.set_region(right, self.number, self.base, self.size, access, True, self.srd)


def guard_stack(mpu, right, bottom, number=STACK_REGION):
    """Make the lowest bytes of the stack whose lowest address is `bottom` a no-access,
    execute-never guard: an overflow faults (HardFault on ARMv6-M, MemManage on ARMv7-M)
    instead of overwriting what lies below. Returns the new lowest usable stack address."""
    base, size = enc.stack_guard(bottom, mpu.arch)
    _check_in_map(mpu, base, size, ("sram", "ccm", "sram2"))
    mpu.set_region(right, number, base, size, "none", True, 0, "normal_wb")
    return base + size


class Guards:
    """What arm() set up at boot: the Mpu, its right, the OTA Window and the lowest usable
    stack address. System keeps it as the "mpu" right: only specs granted it reach it."""

    def __init__(self, mpu, right, window, stack_low, area):
        self.mpu = mpu
        self.right = right
        self.window = window
        self.stack_low = stack_low
        self.addr, self.size = area

    def opened(self):
        """`with guards.opened():` the OTA keys and commit pointer are writable inside."""
        return self.window.opened(self.right)

    def keep(self, data):
        """The commit path's one write: `data` (bytes, with its length) into the guarded area."""
        if len(data) + 4 > self.size:
            raise ValueError("the OTA area holds %d bytes, not %d" % (self.size - 4, len(data)))
        m8 = machine.mem8
        with self.opened():
            for i, b in enumerate(len(data).to_bytes(4, "little") + bytes(data)):
                m8[self.addr + i] = b

    def kept(self):
        """What keep() last wrote (b"" since the power came on: SSRAM2 starts zeroed)."""
        m8, a = machine.mem8, self.addr
        n = m8[a] | m8[a + 1] << 8 | m8[a + 2] << 16 | m8[a + 3] << 24
        return bytes(m8[a + 4 + i] for i in range(n)) if n <= self.size - 4 else b""


def arm():
    """Program the board's guards and turn the MPU on: a no-access stack guard at
    board.MPU_STACK and the OTA area board.MPU_OTA = (address, bytes) read-only. Once per
    boot (it issues the right); None where the board names no guards or has no MPU we drive."""
    stack = getattr(board, "MPU_STACK", None)
    ota = getattr(board, "MPU_OTA", None)
    if not available() or stack is None or ota is None:
        return None
    m = Mpu()
    right = issue_right()
    low = guard_stack(m, right, stack)
    w = Window(m, right, ota[0], ota[1])
    m.enable(right)
    return Guards(m, right, w, low, ota)
