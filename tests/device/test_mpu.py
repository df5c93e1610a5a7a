# Device tests of the MPU wrapper (outstack.hal.mpu, mpu_enc) and of the virtual board's MPU
# register model (boards/unix/rom/_mpu_model.py), run inside MicroPython. On a board with a
# real MPU (mps2-an385: QEMU's PMSAv7) the same tests write the core's own registers through
# machine.mem32 and read them back (Real below); the tests of the model itself are skipped.
#
# The expected register values below were worked out by hand, field by field, from the
# encodings of the ARMv6-M ARM (DDI0419) and ARMv7-M ARM (DDI0403), section B3.5, whose field
# tables are reprinted in the Cortex-M0+ (DUI0662) and Cortex-M4 (DUI0553A) generic user guides:
#   RBAR = ADDR | VALID<<4 | REGION           ADDR = base, VALID=1 selects REGION (DUI0662 T4.29)
#   RASR = XN<<28 | AP<<24 | TEX<<19 | S<<18 | C<<17 | B<<16 | SRD<<8 | SIZE<<1 | ENABLE
#                                             (DUI0662 T4.30: TEX absent on v6-M; DUI0553A T4-43)
#   SIZE = log2(bytes) - 1; minimum 7 (256 B) on v6-M, 4 (32 B) on v7-M (T4.31, T4-44)
#   AP   000 none, 001 priv RW, 010 RW + user RO, 011 RW, 100 reserved, 101 priv RO, 110/111 RO
#                                             (DUI0662 T4.33, DUI0553A T4-47)
#   TEX C B  000 0 0 strongly-ordered, 000 0 1 device, 000 1 0 normal WT, 000 1 1 normal WB,
#            001 0 0 normal non-cacheable, 001 1 1 normal WBWA, 010 0 0 non-shared device,
#            1BB A A normal cached, BB outer / AA inner: 00 NC, 01 WBWA, 10 WT, 11 WB
#                                             (DUI0662 T4.32 (TEX=000 only), DUI0553A T4-45, T4-46)
# An independent check: CMSIS ARM_MPU_RBAR(region, base) and ARM_MPU_RASR(...) give the same.
import machine
from _runner import Skip
from outstack.errors import ConfigError, NotPermitted
from outstack.hal import mpu
from outstack.hal import mpu_enc as enc

try:
    import _mpu_model  # the unix board's register model
except ImportError:
    _mpu_model = None  # a real MPU: machine.mem32 reaches the core's registers
REAL = _mpu_model is None
RIGHT = mpu.issue_right()  # as System does once at boot
_CTRL, _RNR, _RBAR, _RASR = 0xE000ED94, 0xE000ED98, 0xE000ED9C, 0xE000EDA0


class Real:
    # The core's MPU read back, with the model's face where the tests look: rbar/rasr per
    # region, ctrl, permits() by the PMSAv7 rules (privileged access, as MicroPython runs).
    faults = []  # a real MPU never refuses a write

    @property
    def ctrl(self):
        return machine.mem32[_CTRL]

    def _read(self, n):
        machine.mem32[_RNR] = n
        return machine.mem32[_RBAR] & 0xFFFFFFE0, machine.mem32[_RASR] & 0xFFFFFFFF

    @property
    def rbar(self):
        return [self._read(n)[0] for n in range(8)]

    @property
    def rasr(self):
        return [self._read(n)[1] for n in range(8)]

    def permits(self, addr, kind="r"):
        ctrl = self.ctrl
        if not ctrl & 1:
            return True
        for n in range(7, -1, -1):
            base, rasr = self._read(n)
            size = 2 << (rasr >> 1 & 0x1F)
            if rasr & 1 and base <= addr < base + size:
                if size >= 256 and rasr >> 8 & 1 << ((addr - base) // (size >> 3)):
                    continue  # a disabled subregion: the next region down decides
                ap = rasr >> 24 & 7
                if kind == "x" and rasr >> 28 & 1:
                    return False
                return ap in (1, 2, 3) if kind == "w" else ap in (1, 2, 3, 5, 6, 7)
        return bool(ctrl & 4)  # PRIVDEFENA: the default map


def skip_on_real(why):
    if REAL:
        raise Skip("the unix board's register model only (%s): this board has a real MPU" % why)

# (region, base, size, access, xn, srd, mem, shareable, RBAR, RASR)
V6M = (
    # 2 MiB XIP flash: SIZE=20 (2^21) -> 0x28; AP=110 RO; C=B=1 normal WB; executable
    (0, 0x10000000, 0x200000, "ro", False, 0, "normal_wb", False, 0x10000010, 0x06030029),
    # 256 KiB striped SRAM: SIZE=17 -> 0x22; AP=011; XN; S=1 C=B=1 -> 0x70000
    (1, 0x20000000, 0x40000, "rw", True, 0, "normal_wb", True, 0x20000011, 0x13070023),
    # 256 B stack guard (the minimum): SIZE=7 -> 0x0E; AP=000; XN; C=B=0 strongly-ordered
    (2, 0x20041000, 0x100, "none", True, 0, "strongly_ordered", False, 0x20041012, 0x1000000F),
    # 512 MiB APB/AHB peripherals: SIZE=28 -> 0x38; AP=011; XN; C=0 B=1 device
    (3, 0x40000000, 0x20000000, "rw", True, 0, "device", False, 0x40000013, 0x13010039),
    # 512 KiB over 264 KiB SRAM, subregions 5-7 (of 64 KiB) off: SRD=0xE0; SIZE=18 -> 0x24
    (4, 0x20000000, 0x80000, "rw", True, 0xE0, "normal_wb", False, 0x20000014, 0x1303E025),
    # 4 KiB OTA area, privileged read-only: SIZE=11 -> 0x16; AP=101; XN; C=B=1
    (5, 0x2003F000, 0x1000, "priv_ro", True, 0, "normal_wb", False, 0x2003F015, 0x15030017),
    # 16 KiB boot ROM at 0: SIZE=13 -> 0x1A; AP=110; C=1 B=0 normal WT; executable
    (6, 0x00000000, 0x4000, "ro", False, 0, "normal_wt", False, 0x00000016, 0x0602001B),
    # 4 GiB map, subregions 0 and 7 off: SIZE=31 -> 0x3E; AP=010; XN; S=1; SRD=0x81
    (7, 0x00000000, 1 << 32, "rw_user_ro", True, 0x81, "strongly_ordered", True,
     0x00000017, 0x1204813F),
    # 4 KiB USB DPRAM, region 0 reused: SIZE=11; AP=011; XN; device B=1
    (0, 0x50100000, 0x1000, "rw", True, 0, "device", False, 0x50100010, 0x13010017),
    # 8 KiB scratch X+Y: SIZE=12 -> 0x18; AP=011; executable; S=1 C=1 B=0 -> 0x60000
    (1, 0x20040000, 0x2000, "rw", False, 0, "normal_wt", True, 0x20040011, 0x03060019),
    # 1 KiB, lower half off: SRD=0x0F; SIZE=9 -> 0x12; AP=001 privileged RW; XN; C=B=1
    (2, 0x20001C00, 0x400, "priv_rw", True, 0x0F, "normal_wb", False, 0x20001C12, 0x11030F13),
    # 64 KiB, raw AP=7 (RO, the second RO encoding): SIZE=15 -> 0x1E; C=B=1; executable
    (3, 0x10010000, 0x10000, 7, False, 0, "normal_wb", False, 0x10010013, 0x0703001F),
)

V7M = (
    # 1 MiB flash: SIZE=19 -> 0x26; AP=110; TEX=000 C=1 B=0 normal WT; executable
    (0, 0x08000000, 0x100000, "ro", False, 0, "normal_wt", False, 0x08000010, 0x06020027),
    # 128 KiB SRAM: SIZE=16 -> 0x20; AP=011; XN; TEX=001 S=1 C=1 B=1 (WBWA) -> 0xF0000
    (1, 0x20000000, 0x20000, "rw", True, 0, "normal_wbwa", True, 0x20000011, 0x130F0021),
    # 64 KiB CCM: SIZE=15 -> 0x1E; AP=011; XN; TEX=001 C=0 B=0 normal non-cacheable -> 0x80000
    (2, 0x10000000, 0x10000, "rw", True, 0, "normal_nc", False, 0x10000012, 0x1308001F),
    # 512 MiB peripherals: SIZE=28; AP=011; XN; TEX=000 C=0 B=1 shareable device
    (3, 0x40000000, 0x20000000, "rw", True, 0, "device", False, 0x40000013, 0x13010039),
    # 1 KiB USART1: SIZE=9 -> 0x12; AP=011; XN; TEX=010 C=0 B=0 non-shared device -> 0x100000
    (4, 0x40011000, 0x400, "rw", True, 0, "device_nonshared", False, 0x40011014, 0x13100013),
    # 4 KiB FSMC control registers: SIZE=11; AP=011; XN; TEX=000 C=B=0 strongly-ordered, S=1 -> 0x40000
    (5, 0xA0000000, 0x1000, "rw", True, 0, "strongly_ordered", True, 0xA0000015, 0x13040017),
    # 32 KiB cached, outer WBWA (BB=01) inner WT (AA=10): TEX=101 C=1 B=0 -> 0x2A0000; SIZE=14
    (6, 0x20008000, 0x8000, "rw", True, 0, enc.cached("wbwa", "wt"), False,
     0x20008016, 0x132A001D),
    # 32 B stack guard (the v7-M minimum): SIZE=4 -> 0x08; AP=000; XN; strongly-ordered
    (7, 0x20000400, 0x20, "none", True, 0, "strongly_ordered", False, 0x20000417, 0x10000009),
    # 64 B privileged read-only: SIZE=5 -> 0x0A; AP=101; XN; TEX=000 C=B=1
    (0, 0x2001FFC0, 0x40, "priv_ro", True, 0, "normal_wb", False, 0x2001FFD0, 0x1503000B),
    # 4 GiB no-access background: SIZE=31 -> 0x3E; AP=000; XN; strongly-ordered
    (1, 0x00000000, 1 << 32, "none", True, 0, "strongly_ordered", False, 0x00000011, 0x1000003F),
    # 256 B, SRD=0x81; outer NC (BB=00) inner WB (AA=11): TEX=100 C=1 B=1, S=1 -> 0x270000;
    # AP=010; executable; SIZE=7 -> 0x0E
    (2, 0x2001FF00, 0x100, "rw_user_ro", False, 0x81, enc.cached("nc", "wb"), True,
     0x2001FF12, 0x0227810F),
    # 128 B, outer WB (BB=11) inner WBWA (AA=01): TEX=111 C=0 B=1 -> 0x390000; SIZE=6 -> 0x0C
    (3, 0x20000080, 0x80, "rw", True, 0, enc.cached("wb", "wbwa"), False, 0x20000093, 0x1339000D),
)


def raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return str(e)
    raise AssertionError("%s not raised by %s%r" % (exc.__name__, fn, args))


def model_mpu(arch, mcu=None):
    if REAL:  # the real registers, whatever arch the test encodes for (v6-M fields fit v7-M)
        fresh_board_mpu()
        return mpu.Mpu(arch, None, mcu), Real()
    model = _mpu_model.Model(arch)
    return mpu.Mpu(arch, _mpu_model.Mem(4, model), mcu), model


def fresh_board_mpu():
    # Put the board's MPU (model) back to reset state with legal writes (tests share one board).
    m = mpu.Mpu()
    m.disable(RIGHT)
    for r in range(m.regions):
        m.clear_region(RIGHT, r)
    return m, Real() if REAL else _mpu_model.board_model()


def check_vectors(arch, cases):
    assert len(cases) >= 10
    for n, base, size, access, xn, srd, mem, s, rbar, rasr in cases:
        got = enc.encode(arch, n, base, size, access, xn, srd, mem, s)
        assert got == (rbar, rasr), "%s region %d at 0x%08x: got 0x%08x 0x%08x, want %s" % (
            arch, n, base, got[0], got[1], "0x%08x 0x%08x" % (rbar, rasr))


def test_armv6m_known_register_values():
    check_vectors("armv6m", V6M)


def test_armv7m_known_register_values():
    check_vectors("armv7m", V7M)


def write_vectors(arch, cases, mcu):
    m, model = model_mpu(arch, mcu)
    if not REAL:  # a real core would fault on these maps (region 1: 4 GiB no access)
        m.enable(RIGHT)
    for n, base, size, access, xn, srd, mem, s, rbar, rasr in cases:
        assert m.set_region(RIGHT, n, base, size, access, xn, srd, mem, s) == (rbar, rasr)
        got = m.region(n)
        assert got == (rbar & ~0x10, rasr), "region %d reads 0x%08x 0x%08x" % (n, got[0], got[1])
        assert (model.rbar[n], model.rasr[n]) == (base, rasr)  # VALID reads as 0, REGION as RNR
    assert model.faults == [] and m.enabled() != REAL
    fresh_board_mpu()


def test_armv6m_values_pass_the_register_model():
    write_vectors("armv6m", V6M, "rp2040")


def test_armv7m_values_pass_the_register_model():
    write_vectors("armv7m", V7M, "stm32f405")


BAD = (  # (arch, changes to a good region, words the error must contain)
    ("armv6m", {"size": 3000}, "not a power of two: use 4096"),
    ("armv6m", {"size": 128}, "below the armv6m minimum of 256 B"),
    ("armv7m", {"size": 16, "base": 0x20000010}, "below the armv7m minimum of 32 B"),
    ("armv7m", {"size": 1 << 33, "base": 0}, "above 4 GiB"),
    ("armv6m", {"base": 0x20000100},
     "not aligned to its size (4096 B): use 0x20000000 or 0x20001000"),
    ("armv6m", {"base": 1 << 32}, "outside the 32-bit address space"),
    ("armv6m", {"base": -4096}, "outside the 32-bit address space"),
    ("armv6m", {"number": 8}, "region number 8 does not exist: this MPU has regions 0..7"),
    ("armv7m", {"number": -1}, "region number -1 does not exist"),
    ("armv6m", {"srd": 0x100}, "not 8 bits"),
    ("armv7m", {"size": 128, "srd": 1}, "a 128 B MPU region has no subregions"),
    ("armv6m", {"access": 4}, "AP=0b100 is reserved"),
    ("armv7m", {"access": "rwx"}, "access 'rwx' is unknown"),
    ("armv6m", {"mem": "normal_wbwa"}, "ARMv6-M has TEX=0 only"),
    ("armv6m", {"mem": enc.cached("wb", "wb")}, "ARMv6-M has TEX=0 only"),
    ("armv7m", {"mem": (1, 0, 1)}, "TEX=1 C=0 B=1 is reserved"),
    ("armv7m", {"mem": (1, 1, 0)}, "implementation defined"),
    ("armv7m", {"mem": (2, 0, 1)}, "TEX=2 C=0 B=1 is reserved"),
    ("armv7m", {"mem": (2, 1, 0)}, "TEX=2 C=1 B=0 is reserved"),
    ("armv7m", {"mem": (3, 0, 0)}, "TEX=3 C=0 B=0 is reserved"),
    ("armv7m", {"mem": "cached"}, "memory type 'cached' is unknown"),
)


def test_invalid_regions_are_rejected_with_clear_errors():
    for arch, change, words in BAD:
        kw = {"number": 1, "base": 0x20000000, "size": 0x1000}
        kw.update(change)
        msg = raises(ValueError, enc.encode, arch, **kw)
        assert words in msg, "%s %r: %s" % (arch, change, msg)


def test_invalid_region_is_refused_before_any_register_write():
    m, model = model_mpu("armv7m")
    m.set_region(RIGHT, 0, 0x20000000, 0x1000)
    region, writes = m.region(0), len(getattr(model, "writes", ()))
    raises(ValueError, m.set_region, RIGHT, 0, 0x20000100, 0x1000)
    assert len(getattr(model, "writes", ())) == writes and m.region(0) == region


def test_esp32_has_no_mpu_and_rp2350_is_not_supported_yet():
    msg = raises(ConfigError, mpu.Mpu, None)
    assert "no MPU on this chip" in msg and "software policy applies" in msg, msg
    msg = raises(ConfigError, enc.encode, None, 0, 0x20000000, 256)
    assert "no MPU on this chip" in msg, msg
    msg = raises(ConfigError, mpu.Mpu, "armv8m")
    assert "ARMv8-M" in msg and "not supported yet" in msg, msg
    assert "must be 'armv6m'" in raises(ConfigError, mpu.Mpu, "armv9")
    assert not mpu.available(None) and not mpu.available("armv8m")
    assert mpu.available() and mpu.available("armv7m")


def test_changes_need_the_right_issued_at_boot():
    m, model = model_mpu("armv6m")
    for forged in (None, mpu.MpuRight(), object()):
        msg = raises(NotPermitted, m.set_region, forged, 0, 0x20000000, 256)
        assert "MpuRight issued at boot" in msg, msg
        raises(NotPermitted, m.enable, forged)
        raises(NotPermitted, m.clear_region, forged, 0)
    assert "already issued" in raises(NotPermitted, mpu.issue_right)
    assert model.rasr == [0] * 8 and model.ctrl == 0


def test_mpu_writes_through_machine_mem32_to_the_board_registers():
    m, model = fresh_board_mpu()
    # read from MPU_TYPE.DREGION; the unix board plays an RP2040, mps2-an385 is a Cortex-M3
    assert m.arch == ("armv7m" if REAL else "armv6m") and m.regions == 8
    m.enable(RIGHT)
    assert model.ctrl == 5  # ENABLE | PRIVDEFENA; HFNMIENA stays 0
    if not REAL:
        model.writes.clear()
    m.set_region(RIGHT, 3, 0x20000000, 0x40000, "rw", True, 0, "normal_wb", True)
    if not REAL:
        assert model.writes == [(_CTRL, 0), (_RNR, 3), (_RASR, 0), (_RBAR, 0x20000013),
                                (_RASR, 0x13070023), (_CTRL, 5)], model.writes  # MPU off meanwhile
    assert machine.mem32[_RBAR] == 0x20000003
    assert machine.mem32[_RASR] == 0x13070023
    assert model.faults == [] and model.ctrl == 5


def test_real_mpu_takes_raw_writes_as_the_silicon_does():
    fresh_board_mpu()
    mem = machine.mem32
    if not REAL:  # the model is stricter than silicon: it refuses what a core drops
        assert "read-only" in raises(ValueError, mem.__setitem__, 0xE000ED90, 0x1000)
        assert "reserved" in raises(ValueError, mem.__setitem__, _RASR, 0x20030017)
        return
    mem[0xE000ED90] = 0x1000  # MPU_TYPE is read-only: the write is dropped
    assert mem[0xE000ED90] == 0x800  # 8 unified regions
    mem[_RNR] = 1
    mem[_RBAR] = 0x20001000  # VALID=0: region 1 (MPU_RNR)
    mem[_RASR] = 0x20030017  # bit 29 is reserved: it reads as zero
    assert mem[_RASR] == 0x00030017 and mem[_RBAR] == 0x20001001
    mem[_RASR] = 0


def test_register_model_rejects_illegal_raw_writes():
    skip_on_real("it refuses illegal writes")
    m, model = fresh_board_mpu()
    mem = machine.mem32
    cases = (  # (register, value, words), each bypassing the wrapper
        (_mpu_model.RNR, 8, "MPU_RNR=8 selects no region"),
        (_mpu_model.RBAR, 0x20000019, "REGION=9"),
        (_mpu_model.RBAR, 0x200000E0, "bits [7:5], reserved on ARMv6-M"),
        (_mpu_model.RASR, 0x0303000B, "RASR.SIZE=5 (64 B) is below the minimum 7 (256 B)"),
        (_mpu_model.RASR, 0x04030017, "AP=0b100 is reserved"),
        (_mpu_model.RASR, 0x030F0017, "ARMv6-M has TEX=000 only"),
        (_mpu_model.RASR, 0x20030017, "reserved bits 0x20000000"),
        (_mpu_model.RASR, 0x0303001F, "base 0x20001000 is not aligned to its size 65536 B"),
        (_mpu_model.CTRL, 2, "HFNMIENA=1 with ENABLE=0"),
        (_mpu_model.CTRL, 8, "reserved bits"),
        (_mpu_model.TYPE, 0x1000, "MPU_TYPE is read-only"),
    )
    before = len(model.faults)
    mem[_mpu_model.RNR] = 1
    mem[_mpu_model.RBAR] = 0x20001000  # VALID=0: region 1 (MPU_RNR), disabled so far
    for reg, value, words in cases:
        msg = raises(ValueError, mem.__setitem__, reg, value)
        assert words in msg, "0x%08x <- 0x%08x: %s" % (reg, value, msg)
    assert len(model.faults) == before + len(cases)
    assert model.rnr == 1 and model.rasr[1] == 0 and model.ctrl == 0  # nothing took effect
    mem[_mpu_model.RASR] = 0x03030017  # the same region, 4 KiB: legal
    assert model.rasr[1] == 0x03030017 and len(model.faults) == before + len(cases)


def test_register_model_rules_for_armv7m():
    skip_on_real("its armv7m rules")
    model = _mpu_model.Model("armv7m")
    mem = _mpu_model.Mem(4, model)
    mem[0xE000EDA4] = 0x20000080 | 0x10 | 2  # MPU_RBAR_A1, VALID: region 2
    mem[0xE000EDA8] = 0x0303000D  # MPU_RASR_A1: 128 B, AP=011, TEX=000 C=B=1
    assert model.rnr == 2 and model.rbar[2] == 0x20000080 and model.rasr[2] == 0x0303000D
    bad = mem.__setitem__
    assert "SRD=0x01 on a 128 B region" in raises(ValueError, bad, 0xE000EDB0, 0x0303010D)  # A2
    assert "TEX=1 C=0 B=1 is reserved" in raises(ValueError, bad, _mpu_model.RASR, 0x0309000D)
    assert "(32 B)" in raises(ValueError, bad, _mpu_model.RASR, 0x03030005)  # SIZE=2: 8 B
    msg = raises(ValueError, bad, _mpu_model.RBAR, 0x20000040 | 0x10 | 2)  # moves enabled region 2
    assert "base 0x20000040 is not aligned to its size 128 B (disable the region" in msg, msg
    assert model.rbar[2] == 0x20000080 and len(model.faults) == 4


def test_other_addresses_have_no_register():
    skip_on_real("it has no other registers")
    msg = raises(ValueError, machine.mem32.__getitem__, 0x40058000)
    assert msg == "virtual board: no memory-mapped register at 0x40058000", msg
    assert "ARMv7-M only" in raises(ValueError, machine.mem32.__setitem__, 0xE000EDA4, 0)
    assert "mem32 only" in raises(ValueError, machine.mem16.__getitem__, _mpu_model.RASR)
    assert "not aligned" in raises(ValueError, machine.mem32.__getitem__, _mpu_model.RASR + 2)


def test_ota_window_is_read_only_except_inside_the_commit_path():
    m, model = fresh_board_mpu()
    w = mpu.Window(m, RIGHT, 0x2003F000, 0x1000)
    m.enable(RIGHT)
    assert model.rasr[mpu.OTA_REGION] == 0x16030017  # AP=110 RO, XN, C=B=1, 4 KiB
    assert model.permits(0x2003F800, "r") and not model.permits(0x2003F800, "w")
    assert not model.permits(0x2003F800, "x")
    assert "MpuRight" in raises(NotPermitted, w.__enter__)  # `with w:` without the right
    with w.opened(RIGHT):
        assert model.permits(0x2003F800, "w")  # the commit path writes here
    assert not model.permits(0x2003F800, "w")
    try:
        with w.opened(RIGHT):
            raise OSError("power cut")
    except OSError:
        pass
    assert not model.permits(0x2003F800, "w")  # closed again after a failed commit
    assert model.permits(0x20040000, "w")  # outside the window: the default map


def test_ota_window_uses_subregions_to_fit_the_area():
    m, model = fresh_board_mpu()
    w = mpu.Window(m, RIGHT, 0x20001100, 0x200)
    assert (w.base, w.size, w.srd) == (0x20001000, 0x400, 0xC3)  # eighths 2-5 of 1 KiB on
    m.enable(RIGHT)
    assert model.permits(0x200010FF, "w") and model.permits(0x20001300, "w")
    assert not model.permits(0x20001100, "w") and not model.permits(0x200012FF, "w")
    msg = raises(ValueError, mpu.Window, m, RIGHT, 0x20001010, 0x100)
    assert "align its start and end to 64 B" in msg, msg
    msg = raises(ValueError, mpu.Window, m, RIGHT, 0x30000000, 0x100)
    assert "outside the sram/ccm/flash" in msg, msg


def test_ota_window_below_256_bytes_is_one_whole_region():
    m, model = model_mpu("armv7m", "stm32f405")
    w = mpu.Window(m, RIGHT, 0x20000040, 0x40)
    assert (w.base, w.size, w.srd) == (0x20000040, 0x40, 0)
    assert model.rasr[mpu.OTA_REGION] == 0x1603000B  # AP=110, XN, C=B=1, SIZE=5 (64 B)
    msg = raises(ValueError, mpu.Window, m, RIGHT, 0x20000040, 0x30)
    assert "make it a power of two (32 B or more) aligned to its size" in msg, msg


def test_stack_guard_is_the_smallest_aligned_no_access_region():
    m, model = fresh_board_mpu()
    low = mpu.guard_stack(m, RIGHT, 0x20040F90)  # a stack whose lowest byte is unaligned
    if m.arch == "armv6m":  # the unix board plays an RP2040: 256 B regions
        base, rasr = 0x20041000, 0x1003000F  # AP=000, XN, C=B=1, SIZE=7
    else:  # a Cortex-M3: 32 B regions
        base, rasr = 0x20040FA0, 0x10030009  # AP=000, XN, C=B=1, SIZE=4
    size = 2 << (rasr >> 1 & 0x1F)
    assert low == base + size  # the guard at the first aligned address, usable stack above it
    assert model.rbar[mpu.STACK_REGION] == base
    assert model.rasr[mpu.STACK_REGION] == rasr
    m.enable(RIGHT)
    for kind in "rwx":
        assert not model.permits(base, kind) and not model.permits(base + size - 1, kind)
    assert model.permits(base + size, "w") and model.permits(base - 1, "w")
    assert "outside the sram/ccm" in raises(ValueError, mpu.guard_stack, m, RIGHT, 0x10000000)


def test_stack_guard_on_armv7m_is_32_bytes():
    m, model = model_mpu("armv7m", "stm32f405")
    assert mpu.guard_stack(m, RIGHT, 0x2001F004) == 0x2001F040
    assert model.rbar[7] == 0x2001F020 and model.rasr[7] == 0x10030009
    assert mpu.guard_stack(m, RIGHT, 0x10000000) == 0x10000020  # CCM is RAM too


def test_clear_and_disable():
    m, model = fresh_board_mpu()
    m.set_region(RIGHT, 5, 0x20010000, 0x1000, "none", True)
    m.enable(RIGHT, background=REAL)  # a real core without the background map: nothing runs
    assert not model.permits(0x20010000, "r")
    if not REAL:
        assert model.ctrl == 1
        assert not model.permits(0x30000000, "r")  # no background map without PRIVDEFENA
    m.clear_region(RIGHT, 5)
    assert model.rasr[5] == 0
    m.disable(RIGHT)
    assert not m.enabled() and model.permits(0x20010000, "w")
