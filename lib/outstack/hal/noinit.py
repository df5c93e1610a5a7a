# The words a board keeps over a reset beside its backup bytes (boards/mps2-an385/board.h):
# the number of the server whose handler runs, which the kernel writes before each handler,
# and the fault the board's own handler recorded (kind, addresses, that number) before it
# reset. A table of server names, written at boot, lets the next boot name the server.
# Boards without these words (board.NOINIT missing) have none of this: the software records.
import machine
from micropython import const
from outstack import board

_KIND = const(0x08)  # exception number (IPSR) of the last fault, 0 if none
_PC = const(0x0C)
_CFSR = const(0x14)
_MMFAR = const(0x18)
_BFAR = const(0x1C)
_RUNNING = const(0x30)
_FAULT_RUNNING = const(0x34)
_VM_STARTS = const(0x38)  # VM starts since the last reset (board.c counts them)
_NAMES = const(0x100)  # SLOTS names of NAME bytes, zero-padded
_NAME = const(16)
SLOTS = 32
_MMARVALID = const(0x80)  # CFSR bits: MMFAR holds the address; BFAR holds it
_BFARVALID = const(0x8000)
KINDS = {2: "watchdog", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}


def base():
    """The address of the board's noinit words, or None where it has none."""
    return getattr(board, "NOINIT", None)


class _Word:
    # The running-server word: r[0] = n stores n with no allocation (mem32 takes small ints).
    def __init__(self, addr):
        self.addr = addr

    def __setitem__(self, _, n):
        machine.mem32[self.addr] = n


def running_word():
    """What the kernel writes the running server's number into (None: no such word here)."""
    b = base()
    if b is None:
        return None
    try:
        import uctypes

        return uctypes.bytearray_at(b + _RUNNING, 1)  # numbers are below 256
    except ImportError:
        return _Word(b + _RUNNING)


def name_servers(kernel):
    """Write the name of every registered server into the table (at boot, and after a
    server is added), then let the kernel mark the running server."""
    b = base()
    if b is None:
        return
    for p in kernel.names.values():
        if 0 < p.num <= SLOTS:
            at = b + _NAMES + (p.num - 1) * _NAME
            raw = p.name.encode()[: _NAME - 1]
            for i in range(_NAME):
                machine.mem8[at + i] = raw[i] if i < len(raw) else 0
    kernel.running = running_word()


def _name(b, num):
    if not 0 < num <= SLOTS:
        return None if num == 0 else "#%d" % num
    at = b + _NAMES + (num - 1) * _NAME
    raw = bytes(machine.mem8[at + i] for i in range(_NAME))
    return raw[: raw.find(b"\0")].decode() or "#%d" % num


def soft_reboot():
    """True when this VM start is a soft reboot (Ctrl-D, mpremote), not a reset: the reset
    cause still names the last reset, which an earlier start has accounted for."""
    b = base()
    return b is not None and machine.mem32[b + _VM_STARTS] > 1


def take_fault():
    """The fault the board recorded before its last reset, as a dict for the crash record
    (kind, msg, addr, pc, server), or None; taken once: the next boot does not see it again."""
    b = base()
    if b is None:
        return None
    mem = machine.mem32  # reads signed on 32-bit ports: masked where a word can be that high
    kind = mem[b + _KIND]
    if not kind:
        return None
    mem[b + _KIND] = 0
    cfsr = mem[b + _CFSR] & 0xFFFFFFFF
    addr = None
    if kind == 4 and cfsr & _MMARVALID:
        addr = mem[b + _MMFAR] & 0xFFFFFFFF
    elif kind == 5 and cfsr & _BFARVALID:
        addr = mem[b + _BFAR] & 0xFFFFFFFF
    name = KINDS.get(kind, "exception %d" % kind)
    pc = "0x%08x" % (mem[b + _PC] & 0xFFFFFFFF)
    msg = "%s at pc %s" % (name, pc) if addr is None else "%s: access to 0x%08x at pc %s" % (
        name, addr, pc)
    return {"kind": name, "msg": msg, "addr": None if addr is None else "0x%08x" % addr,
            "pc": pc, "cfsr": "0x%08x" % cfsr, "server": _name(b, mem[b + _FAULT_RUNNING])}
