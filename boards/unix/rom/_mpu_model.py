# The virtual board's MPU: a model of the System Control Space MPU registers (PMSAv6 on
# ARMv6-M, PMSAv7 on ARMv7-M, 8 regions) that checks every write against the architecture's
# rules. Where a real core would be UNPREDICTABLE or ignore a write, the model records the
# fault in .faults and raises ValueError, so a wrapper bug fails a test instead of a board.
# It checks; it does not police Python's own memory accesses: permits() says what would fault.
# Written apart from lib/outstack/hal/mpu_enc.py on purpose: one must not copy the other's bugs.
# Sources: ARMv6-M ARM (DDI0419) and ARMv7-M ARM (DDI0403), B3.5; DUI0662 / DUI0553A tables.
import _hw

TYPE = 0xE000ED90
CTRL = 0xE000ED94
RNR = 0xE000ED98
RBAR = 0xE000ED9C
RASR = 0xE000EDA0
LO = 0xE000ED90
HI = 0xE000EDBC  # the v7-M aliases end at MPU_RASR_A3, 0xE000EDB8
_ALIAS = {0xE000EDA4: RBAR, 0xE000EDA8: RASR, 0xE000EDAC: RBAR,  # MPU_RBAR_A1..RASR_A3
          0xE000EDB0: RASR, 0xE000EDB4: RBAR, 0xE000EDB8: RASR}
_NAMES = {TYPE: "MPU_TYPE", CTRL: "MPU_CTRL", RNR: "MPU_RNR", RBAR: "MPU_RBAR", RASR: "MPU_RASR"}
_MIN_SIZE = {"armv6m": 7, "armv7m": 4}  # smallest RASR.SIZE: 256 B on v6-M, 32 B on v7-M
# RASR bits that exist: XN 28, AP 26:24, TEX 21:19 (v7-M only), S C B 18:16, SRD 15:8,
# SIZE 5:1, ENABLE 0. The rest is reserved.
_RASR_BITS = {"armv6m": 0x1707FF3F, "armv7m": 0x173FFF3F}
# TEX:C:B (5 bits) that v7-M defines for TEX < 4: 000:xx, 001:00, 001:11, 010:00.
_V7_TCB = (0, 1, 2, 3, 4, 7, 8)
_AP_READ = (1, 2, 3, 5, 6, 7)  # privileged read allowed; unprivileged below
_AP_WRITE = (1, 2, 3)
_AP_USER_READ = (2, 3, 6, 7)
_AP_USER_WRITE = (3,)


class Model:
    def __init__(self, arch, regions=8):
        if arch not in _MIN_SIZE:
            raise ValueError("virtual board: " + ("this board has no MPU (MPU = None)"
                             if arch is None else "the %s MPU is not modelled" % arch))
        self.arch = arch
        self.n = regions
        self.ctrl = 0
        self.rnr = 0
        self.rbar = [0] * regions
        self.rasr = [0] * regions
        self.writes = []  # (address, value) in order, for tests of write sequences
        self.faults = []

    def _reg(self, addr):
        if addr in _NAMES:
            return addr
        if addr in _ALIAS and self.arch == "armv7m":
            return _ALIAS[addr]
        raise ValueError("virtual board: no memory-mapped register at 0x%08x%s" % (
            addr, " (MPU alias registers exist on ARMv7-M only)" if addr in _ALIAS else ""))

    def _fault(self, msg):
        self.faults.append(msg)
        raise ValueError("virtual board MPU (%s): %s" % (self.arch, msg))

    def read(self, addr):
        reg = self._reg(addr)
        if reg == TYPE:
            return self.n << 8  # DREGION = n, IREGION = 0, SEPARATE = 0: unified
        if reg == CTRL:
            return self.ctrl
        if reg == RNR:
            return self.rnr
        if reg == RBAR:
            return self.rbar[self.rnr] | self.rnr  # VALID reads 0, REGION reads MPU_RNR
        return self.rasr[self.rnr]

    def write(self, addr, value):
        reg = self._reg(addr)
        self.writes.append((addr, value))
        if reg == TYPE:
            self._fault("MPU_TYPE is read-only (wrote 0x%08x)" % value)
        elif reg == CTRL:
            self._ctrl(value)
        elif reg == RNR:
            self._rnr(value)
        elif reg == RBAR:
            self._rbar(value)
        else:
            self._rasr(value)

    def _ctrl(self, v):
        if v & ~7:
            self._fault("MPU_CTRL 0x%08x sets reserved bits: only PRIVDEFENA, HFNMIENA and "
                        "ENABLE exist" % v)
        if v & 2 and not v & 1:
            self._fault("MPU_CTRL.HFNMIENA=1 with ENABLE=0 is UNPREDICTABLE")
        if v & 1:
            for r in range(self.n):
                if self.rasr[r] & 1:
                    self._region(r, self.rbar[r], self.rasr[r])
        self.ctrl = v

    def _rnr(self, v):
        if not 0 <= v < self.n:
            self._fault("MPU_RNR=%d selects no region: MPU_TYPE.DREGION is %d" % (v, self.n))
        self.rnr = v

    def _rbar(self, v):
        r = self.rnr
        if v & 0x10:  # VALID: the write selects RBAR.REGION and updates MPU_RNR
            r = v & 0xF
            if r >= self.n:
                self._fault("MPU_RBAR.VALID=1 with REGION=%d: there are %d regions" % (r, self.n))
        base = v & 0xFFFFFFE0
        if self.arch == "armv6m" and base & 0xE0:
            self._fault("MPU_RBAR 0x%08x sets bits [7:5], reserved on ARMv6-M (no region is "
                        "smaller than 256 B)" % v)
        if self.rasr[r] & 1:
            self._base(r, base, self.rasr[r])
        self.rnr = r
        self.rbar[r] = base

    def _rasr(self, v):
        if self.arch == "armv6m" and v >> 19 & 7:
            self._fault("MPU_RASR.TEX=%d: ARMv6-M has TEX=000 only (RASR[21:19] reserved)"
                        % (v >> 19 & 7))
        extra = v & ~_RASR_BITS[self.arch] & 0xFFFFFFFF
        if extra:
            self._fault("MPU_RASR 0x%08x sets reserved bits 0x%08x" % (v, extra))
        if v & 1:
            self._region(self.rnr, self.rbar[self.rnr], v)
        self.rasr[self.rnr] = v

    def _region(self, r, base, v):
        size = v >> 1 & 0x1F
        if size < _MIN_SIZE[self.arch]:
            self._fault("region %d: RASR.SIZE=%d (%d B) is below the minimum %d (%d B)"
                        % (r, size, 2 << size, _MIN_SIZE[self.arch], 2 << _MIN_SIZE[self.arch]))
        if v >> 24 & 7 == 4:
            self._fault("region %d: RASR.AP=0b100 is reserved" % r)
        tex = v >> 19 & 7
        if self.arch == "armv7m" and tex < 4 and (tex << 2 | v >> 16 & 3) not in _V7_TCB:
            self._fault("region %d: TEX=%d C=%d B=%d is reserved or implementation defined"
                        % (r, tex, v >> 17 & 1, v >> 16 & 1))
        if v >> 8 & 0xFF and size < 7:
            self._fault("region %d: SRD=0x%02x on a %d B region (subregions need 256 B or more)"
                        % (r, v >> 8 & 0xFF, 2 << size))
        self._base(r, base, v)

    def _base(self, r, base, v):
        nbytes = 2 << (v >> 1 & 0x1F)
        if base % nbytes:
            self._fault("region %d: base 0x%08x is not aligned to its size %d B (disable the "
                        "region with RASR=0 before moving it)" % (r, base, nbytes))

    def permits(self, addr, kind="r", privileged=True):
        """Would an access of `kind` ('r', 'w' or 'x') at `addr` pass the MPU as programmed?"""
        if not self.ctrl & 1:
            return True
        for r in range(self.n - 1, -1, -1):  # the highest-numbered matching region decides
            v = self.rasr[r]
            nbytes = 2 << (v >> 1 & 0x1F)
            off = addr - self.rbar[r]
            if not v & 1 or not 0 <= off < nbytes:
                continue
            if nbytes >= 256 and v >> 8 >> off // (nbytes >> 3) & 1:
                continue  # subregion disabled: the access falls through to lower regions
            return _allowed(v, kind, privileged)
        return privileged and bool(self.ctrl & 4)  # PRIVDEFENA: the default map, privileged only


def _allowed(v, kind, privileged):
    ap = v >> 24 & 7
    if kind == "w":
        return ap in (_AP_WRITE if privileged else _AP_USER_WRITE)
    readable = ap in (_AP_READ if privileged else _AP_USER_READ)
    return readable and (kind == "r" or not v >> 28 & 1)


_board = None


def board_model():
    """The MPU of this virtual board, of the architecture its facts name (board.MPU)."""
    global _board
    if _board is None:
        _board = Model(_hw.cfg["facts"]["MPU"])
    return _board


class Mem:
    """machine.mem8/mem16/mem32 of the virtual board: the MPU registers, word access only
    (real RASR also takes halfwords: not modelled). Every other address has no register."""

    def __init__(self, width, model=None):
        self.width = width
        self.model = model

    def _at(self, addr):
        if addr % self.width:
            raise ValueError("address %08x is not aligned to %d bytes" % (addr, self.width))
        if not LO <= addr < HI:
            raise ValueError("virtual board: no memory-mapped register at 0x%08x" % addr)
        if self.width != 4:
            raise ValueError("virtual board: MPU registers are modelled for mem32 only, not mem%d"
                             % (8 * self.width))
        if self.model is None:
            self.model = board_model()
        return self.model

    def __getitem__(self, addr):
        return self._at(addr).read(addr)

    def __setitem__(self, addr, value):
        self._at(addr).write(addr, value & 0xFFFFFFFF)  # truncated, as machine.mem32 does
