# Cortex-M MPU region encoding and checks (PMSAv6 on ARMv6-M, PMSAv7 on ARMv7-M): pure
# arithmetic, no `machine`. Sources: ARMv6-M ARM (DDI0419) B3.5 and ARMv7-M ARM (DDI0403)
# B3.5 "Protected Memory System Architecture"; field tables as printed in the Cortex-M0+
# (DUI0662, Tables 4.29-4.33) and Cortex-M4 (DUI0553A, Tables 4-43 to 4-47) generic user guides.
from micropython import const
from outstack.errors import ConfigError

_VALID = const(0x10)  # RBAR[4]: the write also selects RBAR[3:0] as the region (sets MPU_RNR)
_XN = const(28)  # RASR bit positions
_AP = const(24)
_TEX = const(19)
_S = const(18)
_C = const(17)
_B = const(16)
_SRD = const(8)
_SIZE = const(1)
_SUB_MIN_LOG2 = const(8)  # subregions need a region of 256 B or more

# Smallest region, as log2(bytes): v6-M RASR.SIZE >= 7 (256 B), v7-M RASR.SIZE >= 4 (32 B).
_MIN_LOG2 = {"armv6m": 8, "armv7m": 5}

# RASR.AP, privileged/unprivileged (AP table: DUI0662 4.33, DUI0553A 4-47). MicroPython runs
# privileged, so "ro" and "rw" are what it feels; 0b100 is reserved.
ACCESS = {"none": 0, "priv_rw": 1, "rw_user_ro": 2, "rw": 3, "priv_ro": 5, "ro": 6}

# Memory types as (TEX, C, B) (TEX/C/B table: DUI0662 4.32 for v6-M, DUI0553A 4-45 for v7-M).
MEM = {
    "strongly_ordered": (0, 0, 0),
    "device": (0, 0, 1),  # shareable device
    "normal_wt": (0, 1, 0),  # write-through, no write allocate
    "normal_wb": (0, 1, 1),  # write-back, no write allocate
    "normal_nc": (1, 0, 0),  # v7-M: non-cacheable
    "normal_wbwa": (1, 1, 1),  # v7-M: write-back, read and write allocate
    "device_nonshared": (2, 0, 0),  # v7-M
}
# Cache policy AA/BB of TEX=0b1BB, C:B=AA (DUI0553A Table 4-46).
POLICY = {"nc": 0, "wbwa": 1, "wt": 2, "wb": 3}


def rules(arch):
    """The smallest region (log2 bytes) on `arch`; a clear error where there is no MPU to use."""
    if arch in _MIN_LOG2:
        return _MIN_LOG2[arch]
    if arch is None:
        raise ConfigError("no MPU on this chip (board.MPU is None, e.g. ESP32): hardware guards "
                          "are not available, the software policy applies; check mpu.available()")
    if arch == "armv8m":
        raise ConfigError("the ARMv8-M MPU (RP2350, Cortex-M33: RBAR/RLAR with MAIR) is not "
                          "supported yet: the software policy applies; check mpu.available()")
    raise ConfigError("unknown MPU architecture %r: board.MPU must be 'armv6m', 'armv7m', "
                      "'armv8m' or None" % (arch,))


def smallest(arch):
    return 1 << rules(arch)


def _log2(n):
    k = 0
    while (1 << k) < n:
        k += 1
    return k


def size_field(size, arch):
    """RASR.SIZE for a region of `size` bytes: region bytes = 2 ** (SIZE + 1)."""
    k = _log2(size)
    if size < 1 or 1 << k != size:
        raise ValueError("MPU region size %d is not a power of two: use %d" % (size, 1 << k))
    if k < rules(arch):
        raise ValueError("MPU region size %d B is below the %s minimum of %d B"
                         % (size, arch, smallest(arch)))
    if k > 32:
        raise ValueError("MPU region size %d B is above 4 GiB" % size)
    return k - 1


def check_base(base, size):
    if not 0 <= base <= 0xFFFFFFFF:
        raise ValueError("MPU region base 0x%x is outside the 32-bit address space" % base)
    if base % size:
        low = base - base % size
        raise ValueError("MPU region base 0x%08x is not aligned to its size (%d B): use 0x%08x "
                         "or 0x%08x" % (base, size, low, low + size))


def check_number(number, regions):
    if not 0 <= number < regions:
        raise ValueError("MPU region number %d does not exist: this MPU has regions 0..%d"
                         % (number, regions - 1))


def check_srd(srd, size):
    if not 0 <= srd <= 0xFF:
        raise ValueError("MPU subregion mask 0x%x is not 8 bits (one bit per eighth)" % srd)
    if srd and size < 1 << _SUB_MIN_LOG2:
        raise ValueError("a %d B MPU region has no subregions (256 B or more only): use srd=0"
                         % size)


def ap_field(access):
    """RASR.AP for an access name in ACCESS (or a raw AP value 0..7 but 4)."""
    ap = ACCESS.get(access, -1) if isinstance(access, str) else access
    if ap == 4:
        raise ValueError("MPU access AP=0b100 is reserved: use one of %s" % sorted(ACCESS))
    if not isinstance(ap, int) or not 0 <= ap <= 7:
        raise ValueError("MPU access %r is unknown: use one of %s" % (access, sorted(ACCESS)))
    return ap


def cached(outer, inner):
    """v7-M normal cached memory: TEX=0b1BB (outer policy), C:B=AA (inner policy)."""
    o, i = POLICY[outer], POLICY[inner]
    return (4 | o, i >> 1, i & 1)


def mem_fields(mem, arch):
    """(TEX, C, B) for a MEM name or a raw (TEX, C, B) tuple, checked against `arch`."""
    tcb = MEM.get(mem) if isinstance(mem, str) else mem
    if tcb is None:
        raise ValueError("MPU memory type %r is unknown: use one of %s" % (mem, sorted(MEM)))
    tex, c, b = tcb
    rules(arch)
    if arch == "armv6m" and tex:
        raise ValueError("MPU memory type %r needs TEX=%d: ARMv6-M has TEX=0 only (%s)"
                         % (mem, tex, ", ".join(n for n in MEM if not MEM[n][0])))
    if _reserved_tcb(tex, c, b):
        raise ValueError("MPU memory type TEX=%d C=%d B=%d is reserved or implementation "
                         "defined: use one of %s or cached(outer, inner)"
                         % (tex, c, b, sorted(MEM)))
    return tex, c, b


def _reserved_tcb(tex, c, b):
    if not (0 <= tex <= 7 and c in (0, 1) and b in (0, 1)):
        return True
    if tex == 1:
        return c != b  # 001/0/1 reserved, 001/1/0 implementation defined
    return tex == 3 or (tex == 2 and (c or b))


def encode(arch, number, base, size, access="rw", xn=False, srd=0, mem="normal_wb",
           shareable=False, regions=8):
    """(RBAR, RASR) of an enabled region. RBAR carries VALID and the region number, so one
    RBAR write selects the region too (as CMSIS ARM_MPU_RBAR does)."""
    check_number(number, regions)
    k1 = size_field(size, arch)
    check_base(base, size)
    check_srd(srd, size)
    ap = ap_field(access)
    tex, c, b = mem_fields(mem, arch)
    rasr = ((1 if xn else 0) << _XN | ap << _AP | tex << _TEX | (1 if shareable else 0) << _S
            | c << _C | b << _B | srd << _SRD | k1 << _SIZE | 1)
    return base | _VALID | number, rasr


def cover(addr, size, arch):
    """(base, size, srd) of the one legal region whose enabled part is exactly
    addr..addr+size-1: the smallest covering region, with subregions trimming the rest."""
    end = addr + size
    if size < 1 or addr < 0 or end > 1 << 32:
        raise ValueError("0x%x..0x%x is not an area of the 32-bit address space" % (addr, end))
    k = rules(arch)
    while k < 32 and addr - addr % (1 << k) + (1 << k) < end:
        k += 1
    r = 1 << k
    base = addr - addr % r
    if r < 1 << _SUB_MIN_LOG2:
        return _exact(base, r, addr, size, smallest(arch))
    sub = r >> 3
    if addr % sub or end % sub:
        raise ValueError("no single MPU region covers exactly 0x%08x..0x%08x: align its start "
                         "and end to %d B" % (addr, end, sub))
    srd = 0
    for i in range(8):
        if not addr <= base + i * sub < end:
            srd |= 1 << i
    return base, r, srd


def _exact(base, r, addr, size, least):
    # Below 256 B there are no subregions: the area must be a whole region itself.
    if base != addr or r != size:
        raise ValueError("no single MPU region covers exactly 0x%08x..0x%08x: make it a power "
                         "of two (%d B or more) aligned to its size" % (addr, addr + size, least))
    return base, r, 0


def stack_guard(bottom, arch):
    """(base, size) of a no-access guard carved from the lowest bytes of a stack whose lowest
    address is `bottom`: the smallest legal region at the first aligned address at or above
    it, so it never covers memory the stack does not own. The usable stack ends at base+size."""
    size = smallest(arch)
    base = (bottom + size - 1) // size * size
    check_base(base, size)
    return base, size
