"""micropython-lib's own packages, installed the way a board gets them: a mip index built
from the pinned micropython-lib snapshot with its own tools/build.py, served on 127.0.0.1,
and stock `mpremote mip install --index URL` (and `outstack deploy --index URL`) against a
virtual board. No network: everything comes from the local snapshot."""

import hashlib
import json
import os
import re
import signal
import subprocess
import urllib.request

import pytest

from tests.conftest import BIN, DEMO, mpremote, need, one_line_error, outstack
from outstack import cli, image, mipindex, mlib
from outstack.stage import stage
from outstack.paths import ROOT

need(mipindex.missing(), "micropython-lib mip index")

BARE = "print('bare firmware')\n"  # no framework prompt on the USB REPL, no packages


@pytest.fixture(scope="module")
def index():
    with mipindex.serve(mipindex.build()) as served:
        yield served


def fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, direct
    with opener.open(url, timeout=30) as r:
        return r.read()


def bare_firmware(tmp_path, requirements=""):
    fw = tmp_path / "fw"
    fw.mkdir(exist_ok=True)
    (fw / "main.py").write_text(BARE)
    (fw / "requirements.txt").write_text(requirements)
    return fw


def board_says(port: str, code: str) -> str:
    return mpremote(port, "exec", code, timeout=120).stdout.strip()


# ----- the index ---------------------------------------------------------------------------
def test_the_index_is_micropython_libs_own_build_of_the_snapshot(index):
    top = json.loads(fetch(index.url + "/index.json"))
    assert top["v"] == 2  # build.py's index format
    pkgs = {p["name"]: p for p in top["packages"]}
    assert len(pkgs) > 100
    assert pkgs["logging"]["version"] == "0.6.2"
    assert pkgs["logging"]["path"] == "python-stdlib/logging"
    assert pkgs["aiorepl"]["version"] == "0.2.4"
    assert pkgs["aiorepl"]["versions"]["6"] == ["0.2.4"]  # bytecode for MicroPython 1.29's mpy v6
    pj = json.loads(fetch(index.url + "/package/6/logging/latest.json"))
    [(path, short)] = pj["hashes"]
    assert path == "logging.mpy"
    blob = fetch(f"{index.url}/file/{short[:2]}/{short}")
    assert blob[:2] == b"M\x06" and hashlib.sha256(blob).hexdigest().startswith(short)
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(index.url + "/package/6/no-such-package/latest.json")
    assert e.value.code == 404


def test_the_index_is_built_once_per_snapshot(index):
    made = (index.root / "index.json").stat().st_mtime_ns
    assert mipindex.build() == index.root
    assert (index.root / "index.json").stat().st_mtime_ns == made
    assert index.root.name.startswith(mipindex.name() + "-")


def test_files_follow_the_package_json_and_refuse_unknown_names(index):
    got = dict((dest, src) for src, dest in mipindex.files(index.root, ["logging", "aiorepl"]))
    assert sorted(got) == ["/lib/aiorepl.py", "/lib/logging.py"]
    assert b"__version__ = '0.6.2'" in open(got["/lib/logging.py"], "rb").read()  # build.py tags it
    with pytest.raises(mipindex.CliError, match="has no package 'no-such-thing'"):
        mipindex.files(index.root, ["no-such-thing"])
    with pytest.raises(mipindex.CliError, match="has logging 0.6.2, not version '9.9'"):
        mipindex.files(index.root, ["logging@9.9"])
    assert mipindex.files(index.root, ["logging@0.6.2"]) == mipindex.files(index.root, ["logging"])


# ----- stock mpremote, through the host ----------------------------------------------------
def test_mpremote_mip_installs_logging_and_aiorepl_from_the_index(make_board, tmp_path, index):
    vb = make_board(firmware=bare_firmware(tmp_path))
    said = mpremote(vb.usb_port, "exec", "import logging", check=False)
    assert "ImportError: no module named 'logging'" in said.stdout + said.stderr
    r = mpremote(vb.usb_port, "mip", "install", "--index", index.url, "logging", "aiorepl",
                 timeout=300)
    assert f"Installing logging (latest) from {index.url} to /lib" in r.stdout, r.stdout
    assert "Installing: /lib/logging.mpy" in r.stdout
    assert "Installing: /lib/aiorepl.mpy" in r.stdout
    said = board_says(vb.usb_port, "import logging, aiorepl\n"
                                   "print(logging.__version__, aiorepl.__version__, "
                                   "logging.__file__, aiorepl.__file__)\n"
                                   "logging.getLogger('board').warning('up %d', 3)\n")
    assert said.splitlines()[0] == "0.6.2 0.2.4 /lib/logging.mpy /lib/aiorepl.mpy"
    assert "WARNING:board:up 3" in said
    r = mpremote(vb.usb_port, "mip", "install", "--index", index.url, "logging", timeout=300)
    assert "Exists: /lib/logging.mpy" in r.stdout  # same hash: not written again
    r = mpremote(vb.usb_port, "mip", "install", "--index", index.url, "no-such-package",
                 timeout=300, check=False)
    assert r.returncode != 0 and "Package not found" in r.stdout + r.stderr


# ----- outstack mip-index ------------------------------------------------------------------
def test_mip_index_serve_is_an_index_mpremote_installs_from(make_board, tmp_path):
    proc = subprocess.Popen([str(BIN / "outstack"), "mip-index", "serve"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = None
        for line in proc.stdout:  # build (cached), then "serving ... at URL"
            if line.startswith("serving the mip index of micropython-lib-"):
                url = line.split(" at ")[-1].strip()
                break
        assert url and url.startswith("http://127.0.0.1:"), proc.stderr.read()
        said = re.compile(r"serving the mip index of micropython-lib-\w+ \(\d+ packages\) at ")
        assert said.match(line)
        assert said.search((ROOT / "README.md").read_text())  # the README shows it as it is
        vb = make_board(firmware=bare_firmware(tmp_path))
        mpremote(vb.usb_port, "mip", "install", "--index", url, "aiorepl", timeout=300)
        assert board_says(vb.usb_port, "import aiorepl; print(aiorepl.__version__)") == "0.2.4"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_mip_index_serve_on_a_port_in_use_says_so(index):
    port = index.url.rsplit(":", 1)[1]
    r = outstack("mip-index", "serve", "--port", port)
    one_line_error(r, f"cannot serve the mip index on 127.0.0.1:{port}: Address already in use")


def test_mip_index_ls_lists_the_snapshots_packages():
    r = outstack("mip-index", "ls")
    assert r.returncode == 0, r.stderr
    listed = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert listed["logging"] == "0.6.2" and listed["aiorepl"] == "0.2.4"


def test_without_a_snapshot_mip_index_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    r = subprocess.run([str(BIN / "outstack"), "mip-index", "build"], capture_output=True,
                       text=True, env={**os.environ, "MPY_LIB_DIR": str(tmp_path)})
    one_line_error(r, f"MPY_LIB_DIR={tmp_path} is not a micropython-lib tree",
                   "set MPY_LIB_DIR to a micropython-lib checkout or to a snapshot tarball")
    monkeypatch.delenv("MPY_LIB_DIR", raising=False)
    monkeypatch.delenv("MICROPY_DIR", raising=False)
    monkeypatch.setattr(mipindex, "VENDOR", tmp_path)  # a user without ../shared/vendor
    assert cli.main(["mip-index", "serve"]) == 1
    err = capsys.readouterr().err
    assert err == ("outstack: no micropython-lib snapshot found: set MPY_LIB_DIR to a "
                   "micropython-lib checkout or to a snapshot tarball such as "
                   "../shared/vendor/micropython-lib-<commit>.tar.gz\n")


# ----- the virtual board's image -----------------------------------------------------------
def test_the_image_takes_its_packages_from_the_index(make_board, tmp_path, index):
    vb = make_board(files={"/main.py": BARE})  # the demo's firmware: requirements.txt has logging
    said = board_says(vb.usb_port, "import logging; print(logging.__version__, logging.__file__)")
    assert said == "0.6.2 /lib/logging.mpy"
    wanted = mipindex.files(index.root, ["logging"])
    assert [d for _, d in image.layout("unix", DEMO) if d.startswith("/lib/logging")] == \
        [d for _, d in wanted]


def test_without_a_snapshot_the_image_has_minilog_said_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPY_LIB_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(mlib, "_warned", set())
    fw = bare_firmware(tmp_path, "logging\n")
    for _ in range(2):
        files = image.layout("unix", fw)
        assert not [d for _, d in files if "logging" in d]
        assert "/lib/outstack/minilog.py" in [d for _, d in files]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("outstack: micropython-lib packages are not put on the image "
                             f"(MPY_LIB_DIR={tmp_path / 'absent'} does not exist")
    assert "outstack.minilog for logging" in err[0]
    staged = stage(files, "unix", out=tmp_path / "stage")
    assert staged  # the image still builds


# ----- outstack deploy --index -------------------------------------------------------------
def test_deploy_installs_the_requirements_from_the_given_index(make_board, tmp_path, index):
    vb = make_board(firmware=bare_firmware(tmp_path))
    mine = tmp_path / "mine"
    assert outstack("new", str(mine)).returncode == 0
    (mine / "firmware/requirements.txt").write_text("logging\naiorepl  # the asyncio REPL\n")
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--index", index.url,
                 "--project", str(mine), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"mip install aiorepl (index {index.url})" in r.stdout
    assert "  installed /lib/aiorepl.mpy" in r.stdout
    assert "/lib/aiorepl.mpy (not in the project)" not in r.stdout  # mip's files are kept
    said = board_says(vb.usb_port, "import logging, aiorepl\n"
                                   "print(logging.__version__, aiorepl.__version__)")
    assert said.splitlines()[-1] == "0.6.2 0.2.4"
    (mine / "firmware/requirements.txt").write_text("no-such-package\n")
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--index", index.url,
                 "--project", str(mine), timeout=600)
    one_line_error(r, "micropython-lib has no package 'no-such-package'")


def test_deploy_with_an_index_that_does_not_answer_says_which(make_board, tmp_path):
    vb = make_board(firmware=bare_firmware(tmp_path))
    digest = hashlib.sha256(vb.image.read_bytes()).hexdigest()
    mine = tmp_path / "mine"
    assert outstack("new", str(mine)).returncode == 0
    dead = "http://127.0.0.1:9"
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", "--index", dead,
                 "--project", str(mine), timeout=600)
    one_line_error(r, f"could not install micropython-lib package logging from {dead}",
                   "the firmware was not copied")
    assert hashlib.sha256(vb.image.read_bytes()).hexdigest() == digest  # nothing written
