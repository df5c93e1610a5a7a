"""The host tests that matter, on real firmware under QEMU (mps2-an385, make_board(engine=
"qemu")): a power cut at every flash write of an OTA install; a signed update pushed end to
end over UART1 (machine.UART(1) in the firmware) and installed live, a bad one rolled back;
the console over the same link; a server's crash replayed from its record. The same test code
as on the unix board where it exists (imported, not copied).

Skipped with one reason where the ARM toolchain, qemu-system-arm or a MicroPython tree is
missing. Host-time waits are long: the emulated core runs at 31.25 MIPS on a shared host."""

import shutil

import pytest

from tests.conftest import DEMO
from tests.host import test_ota_powercut as powercut

SLOW = 120.0  # seconds to wait for what the board does, at worst, on a loaded host


@pytest.fixture
def bare(tmp_path):
    """A project firmware/ with the demo's boot.py alone (it puts the installed version on
    sys.path, or rolls back one on trial): the image holds that and what a test gives (the
    framework is frozen in the firmware), so an install copies one module, in few writes."""
    d = tmp_path / "bare"
    d.mkdir()
    shutil.copy(DEMO / "boot.py", d / "boot.py")
    return d


def test_power_cut_at_every_flash_write_of_an_install(make_board, bare):
    vb = make_board(engine="qemu", firmware=bare, start=False,
                    files={"/main.py": powercut.MAIN, "/app/cutgreet.py": powercut.V1})
    total, seen = powercut.cut_at_every_write(vb, timeout=SLOW)
    print(f"mps2-an385: {total} cuts, one at each flash write of a boot and an install: old "
          f"version after {seen['old']}, new after {seen['new']}")
    assert seen["old"] and seen["new"]  # cuts before and after the pointer's flip both covered
