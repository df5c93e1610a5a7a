"""`outstack deploy` against virtual boards: compile with mpy-cross, copy with mpremote, run
main.py after a soft reset; and every refusal leaves the board's flash exactly as it was."""

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
import serial

from tests.conftest import mpremote, outstack
from outstack import cli, project, stage
from outstack.commands import deploy
from outstack.errors import CliError
from outstack.paths import LIB, ROOT

ASK = ("import os, outstack, outstack.hal, outstack.board\n"
       "print(outstack.__file__, outstack.hal.__file__, outstack.board.__file__)\n"
       "print(' '.join(sorted(os.listdir('/'))))\n"
       "print(' '.join(sorted(os.listdir('/lib/outstack'))))\n")


# The demo firmware logs to flash by itself; boards here run a quiet main.py instead, so
# "nothing on the board changed" can be checked on the whole flash image.
QUIET = {"/main.py": "print('quiet firmware')\n"}


DEMO = project.load(ROOT)
ON = ("--project", str(ROOT))  # the demo project, wherever the tests run from


def deployed_files(config=None) -> int:
    from outstack.commands.image import files_for

    # the firmware and the framework (mip installs the micropython-lib packages it requires)
    return len(files_for(DEMO, "unix", config, packages=False))


def flash_digest(vb) -> str:
    return hashlib.sha256(vb.image.read_bytes()).hexdigest()


def since_last_reboot(vb, before: int) -> str:
    return vb.output[before:].decode(errors="replace").rsplit("soft reboot", 1)[-1]


def test_deploy_compiles_copies_and_runs_main(make_board, tmp_path):
    vb = make_board(files=QUIET, source=True)  # .py modules: deploy puts .mpy in their place
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps({"name": "deploy-test"}))
    before = len(vb.output)
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--config", str(cfg), *ON)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "copied  /lib/outstack/hal/__init__.mpy" in r.stdout
    assert "removed /lib/outstack/hal/__init__.py (not in the project)" in r.stdout
    # no network here: the firmware's micropython-lib needs come from the local snapshot's index
    assert "the public index is out of reach: installing from the local micropython-lib-" \
        in r.stdout, r.stdout
    n = deployed_files(str(cfg))
    assert re.search(rf"deployed project 'demo': {n} files, \d+ bytes \(\d+ copied, \d+ up to "
                     rf"date, \d+ removed, \d+ data files kept\) to unix", r.stdout)
    # main.py ran after the deploy's last reset, which came from the friendly REPL
    assert "Outstack Micro on unix, reset cause SOFT" in since_last_reboot(vb, before)
    assert "board| Outstack Micro on unix, reset cause SOFT" in r.stdout
    assert "requirements.txt" not in r.stdout  # host-only
    files, root, lib = mpremote(vb.usb_port, "exec", ASK).stdout.strip().splitlines()
    assert files.split() == ["/lib/outstack/__init__.mpy", "/lib/outstack/hal/__init__.mpy",
                             "/lib/outstack/board.mpy"]
    assert {"boot.py", "main.py", "config.json", "lib"} <= set(root.split())
    assert not [name for name in root.split() if name.endswith(".mpy")]
    assert {"__init__.mpy", "board.mpy", "hal"} <= set(lib.split())
    assert not [name for name in lib.split() if name.endswith(".py")]  # no twin shadows a .mpy
    config = mpremote(vb.usb_port, "fs", "cat", ":config.json").stdout
    # the file given, with the project's trusted dev key handed to its OTA server
    assert json.loads(config) == {"name": "deploy-test",
                                  "servers": {"ota": {"keys": DEMO.trusted_keys()}}}


def test_redeploy_skips_unchanged_files_and_source_replaces_mpy_twins(make_board):
    vb = make_board(files=QUIET)
    assert outstack("deploy", "--port", vb.usb_port, "--board", "unix", *ON).returncode == 0
    again = outstack("deploy", "--port", vb.usb_port, "--board", "unix", *ON)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"(0 copied, {deployed_files()} up to date, 0 removed" in again.stdout
    src = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--source", *ON)
    assert src.returncode == 0, src.stderr
    assert "removed /lib/outstack/__init__.mpy (not in the project)" in src.stdout
    files, _root, lib = mpremote(vb.usb_port, "exec", ASK).stdout.strip().splitlines()
    assert all(f.endswith(".py") for f in files.split())
    assert {"__init__.py", "board.py", "hal"} <= set(lib.split())
    assert not [name for name in lib.split() if name.endswith(".mpy")]


# ----- refusals: exit 1, one line, and nothing on the board touched ------------------------
def assert_refused(vb, result, message, digest, mark):
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("outstack: " + message), result.stderr
    assert flash_digest(vb) == digest
    assert vb.mark() == mark, vb.events[mark:]  # not even reset


def test_unknown_board_is_refused(make_board):
    vb = make_board(files=QUIET)
    digest, mark = flash_digest(vb), vb.mark()
    r = outstack("deploy", "--port", vb.usb_port, "--board", "pico9000", *ON)
    assert_refused(vb, r, "unknown board 'pico9000': known boards are ", digest, mark)


def test_missing_port_is_refused(make_board, tmp_path):
    vb = make_board(files=QUIET)
    digest, mark = flash_digest(vb), vb.mark()
    port = str(tmp_path / "ttyACM7")
    r = outstack("deploy", "--port", port, "--board", "unix", *ON)
    assert_refused(vb, r, f"no board at {port}: no such device", digest, mark)


def test_port_in_use_is_refused(make_board):
    vb = make_board(files=QUIET)
    digest, mark = flash_digest(vb), vb.mark()
    with serial.Serial(vb.usb_port, exclusive=True):
        r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", *ON)
    assert_refused(vb, r, f"port {vb.usb_port} is in use by another program (close "
                          f"mpremote/terminal sessions on it)", digest, mark)


def test_watchdog_above_board_limit_is_refused(make_board, tmp_path):
    vb = make_board(files=QUIET)
    digest, mark = flash_digest(vb), vb.mark()
    cfg = tmp_path / "device.json"
    cfg.write_text(json.dumps({"watchdog_ms": 9000}))
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--config", str(cfg), *ON)
    assert_refused(vb, r, f"{cfg}: watchdog timeout 9000 ms is above the unix limit of 8388 ms",
                   digest, mark)


def test_silent_port_is_refused_after_timeout():
    master, slave = os.openpty()  # a serial port with nothing on the other end
    try:
        port = os.ttyname(slave)
        r = outstack("deploy", "--port", port, "--board", "unix", *ON)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 1
    assert r.stderr.startswith(f"outstack: the board on {port} does not answer: no MicroPython "
                               f"REPL within 5 s") and r.stderr.count("\n") == 1, r.stderr


def test_mip_without_network_names_the_packages(make_board, tmp_path, monkeypatch, capsys):
    vb = make_board(files=QUIET)
    digest = flash_digest(vb)
    mine = tmp_path / "mine"
    assert cli.main(["new", str(mine)]) == 0
    (mine / "firmware/requirements.txt").write_text("# what the firmware needs\nlogging\n\n"
                                                     "aioble  # BLE\n")
    for name in ("https_proxy", "HTTPS_PROXY"):  # a dead proxy: offline even on a networked host
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.setenv("MPY_LIB_DIR", str(tmp_path / "none"))  # and no micropython-lib snapshot
    assert cli.main(["deploy", "--port", vb.usb_port, "--board", "unix", "--project",
                     str(mine)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("outstack: could not install micropython-lib packages logging, aioble")
    assert f"`mpremote connect {vb.usb_port} mip install logging aioble`" in err
    assert "--no-mip" in err and "manifest.py" in err and err.count("\n") == 1
    assert flash_digest(vb) == digest
    assert cli.main(["deploy", "--port", vb.usb_port, "--board", "unix", "--no-mip",
                     "--project", str(mine)]) == 0
    assert "mip install" not in capsys.readouterr().out


# ----- the build -----------------------------------------------------------------------
def test_stage_keeps_boot_and_main_as_source(tmp_path):
    files = [(str(ROOT / "firmware/main.py"), "/main.py"),
             (str(LIB / "outstack/hal/__init__.py"), "/lib/outstack/hal/__init__.py")]
    staged = stage.stage(files, "rp2040", out=tmp_path)
    assert [dest for _, dest in staged] == ["/main.py", "/lib/outstack/hal/__init__.mpy"]
    assert staged[0][0].read_bytes() == (ROOT / "firmware/main.py").read_bytes()
    assert staged[1][0] == tmp_path / "lib/outstack/hal/__init__.mpy"
    assert staged[1][0].read_bytes()[:2] == b"M\x06"


def test_compile_error_names_file_and_line(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("x = 1\ndef f(:\n    pass\n")
    with pytest.raises(CliError, match=rf"cannot compile {re.escape(str(bad))}, line 2: "
                                       r"SyntaxError: invalid syntax"):
        stage.stage([(str(bad), "/lib/broken.py")], "unix", out=tmp_path / "out")


def test_requirements_skip_comments_and_blank_lines(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# none\n\nlogging@0.6  # pinned\n  aioble\n")
    assert stage.requirements(req) == ["logging@0.6", "aioble"]
    assert stage.requirements(tmp_path / "absent.txt") == []


# ----- packaging: package.json for mip, manifest.py for a frozen build ---------------------
def package_json() -> dict:
    return json.loads((ROOT / "package.json").read_text())


def test_package_json_lists_every_framework_module_and_one_version():
    from outstack.packaging import render

    assert (ROOT / "package.json").read_text() == render(), "package.json is stale: make package.json"
    want = sorted(p.relative_to(LIB).as_posix() for p in (LIB / "outstack").rglob("*.py"))
    urls = package_json()["urls"]
    assert sorted(dest for dest, _ in urls) == want
    assert all(src == "lib/" + dest for dest, src in urls)
    version = re.search(r'__version__ = "(.+)"', (LIB / "outstack/__init__.py").read_text())[1]
    assert package_json()["version"] == version
    assert f'metadata(version="{version}"' in (ROOT / "manifest.py").read_text()


def test_mip_installs_the_framework_from_package_json(make_board):
    vb = make_board(files=QUIET)
    mpremote(vb.usb_port, "mip", "install", "--target", "/pkg", str(ROOT / "package.json"))
    for dest, src in package_json()["urls"]:
        back = mpremote(vb.usb_port, "fs", "cat", f":/pkg/{dest}").stdout
        assert back.replace("\r\n", "\n") == (ROOT / src).read_text()


class FakeManifest:
    """The API MicroPython's tools/manifestfile.py hands a manifest, recording each call."""

    def __init__(self, board_has_manifest=False, board=None):
        self.calls = []
        self.board_has_manifest = board_has_manifest
        self.options = type("Options", (), {"board": board})()

    def api(self):
        names = ("metadata", "require", "package", "module")
        api = {n: (lambda *a, _n=n, **kw: self.calls.append((_n, a, kw))) for n in names}
        return {**api, "include": self.include, "options": self.options}

    def include(self, path, **kw):
        if path.startswith("$(BOARD_DIR)") and not self.board_has_manifest:
            raise ValueError(f"Error in manifest file: /x/{path}: [Errno 2] No such file")
        self.calls.append(("include", (path,), kw))


def run_manifest(fake, monkeypatch, board_env):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("OUTSTACK_BOARD", raising=False)
    monkeypatch.setenv("BOARD", board_env)
    exec((ROOT / "manifest.py").read_text(), fake.api())
    return fake.calls


def test_manifest_freezes_framework_and_the_boards_facts(monkeypatch):
    calls = run_manifest(FakeManifest(), monkeypatch, "RPI_PICO")
    assert calls[0][0] == "metadata"
    assert ("include", ("$(PORT_DIR)/boards/manifest.py",), {}) in calls
    assert ("package", ("outstack",), {"base_path": "lib"}) in calls
    frozen = [c for c in calls if c[0] == "module" and c[1] == ("outstack/board.py",)]
    base = Path(frozen[0][2]["base_path"])
    facts = (ROOT / "boards/rp2040/board.py").read_text()
    assert (ROOT / base / "outstack/board.py").read_text() == facts
    assert ("module", ("main.py",), {"base_path": "firmware"}) not in calls
    assert [c[1][0] for c in calls if c[0] == "require"] == stage.requirements(DEMO.requirements)


def test_manifest_uses_the_boards_own_manifest_and_refuses_unknown_boards(monkeypatch):
    calls = run_manifest(FakeManifest(board_has_manifest=True), monkeypatch, "RPI_PICO_W")
    assert ("include", ("$(BOARD_DIR)/manifest.py",), {}) in calls
    assert ("include", ("$(PORT_DIR)/boards/manifest.py",), {}) not in calls
    with pytest.raises(ValueError, match="set OUTSTACK_BOARD to one of .*rp2040"):
        run_manifest(FakeManifest(), monkeypatch, "SOME_OTHER_BOARD")
    calls = run_manifest(FakeManifest(board="esp32"), monkeypatch, "SOME_OTHER_BOARD")
    assert any("freeze-esp32" in str(c[2].get("base_path")) for c in calls if c[0] == "module")
