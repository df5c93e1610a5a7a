# Power-on of the virtual board: wire up the hardware the host plays, mount the flash as
# the board's root, run boot.py and main.py, then serve the REPL: the sequence of a real port.
# Usage (by the host only): micropython _sim.py BOOT_CONFIG_JSON
import gc

_BARE = gc.mem_alloc()  # the interpreter's own, before any of the ROM's
import json  # noqa: E402
import sys  # noqa: E402
import vfs  # noqa: E402
import _hw  # noqa: E402

_FATAL_FLASH = 3  # exit status the host reads as "flash will not mount"


def _load_config(path):
    with open(path) as f:
        _hw.cfg = json.load(f)
    _hw.connect(_hw.cfg["ctl"])


def _mount_flash():
    from _flash import Flash

    c = _hw.cfg
    f = open(c["image"], "r+b")
    dev = Flash(f, c["facts"]["FLASH_BLOCK"], c["facts"]["FLASH_BLOCKS"],
                c.get("cut_after", 0), c.get("cut_pages", 0), c.get("trace_writes", False))
    try:
        fs = vfs.VfsLfs2(dev, progsize=256, readsize=256)
    except OSError as e:
        sys.stdout.write("virtual board: flash image does not mount (%s)\n" % e)
        _hw.tell("flash-bad %s" % e)
        sys.exit(_FATAL_FLASH)
    _hw.backup = open(c["backup"], "r+b")
    _hw.flash = dev
    import machine, network, _repl  # noqa: F401  loaded now: the host's disk vanishes next

    vfs.umount("/")
    vfs.mount(fs, "/")
    import os

    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]


def _set_rom_aside():
    # The host gave the interpreter the board's heap plus room for this ROM (C on a real
    # board): what the ROM left of that room is held, so the program finds the board's heap.
    gc.collect()
    spare = gc.mem_free() - (_hw.cfg.get("heap", 0) - _BARE)
    if _hw.cfg.get("heap") and spare > 0:
        _hw.rom_room = bytearray(spare)


def main():
    _load_config(sys.argv[1])
    _mount_flash()
    import _repl

    _set_rom_aside()
    _repl.start(_hw.cfg["mode"])  # says "booted" where a Ctrl-C from the host is caught


main()
