"""Bad input to `outstack sim` and `outstack image`: one clear line, exit 1, nothing overwritten."""

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import BIN, DEMO, one_line_error, outstack
from outstack import image


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_missing_image(tmp_path):
    img = tmp_path / "none.img"
    one_line_error(outstack("sim", str(img), "--no-attach"), "does not exist", "--fresh")
    assert not img.exists()


def test_corrupt_image_is_left_alone(tmp_path):
    img = tmp_path / "bad.img"
    img.write_bytes(bytes(range(256)) * (4096 * 352 // 256))
    before = _digest(img)
    one_line_error(outstack("sim", str(img), "--no-attach"), "is corrupt")
    assert _digest(img) == before


def test_image_of_the_wrong_size(tmp_path):
    img = tmp_path / "short.img"
    img.write_bytes(b"\xff" * 4096 * 10)
    one_line_error(outstack("sim", str(img), "--no-attach"), "40960 bytes", "1441792 bytes")
    assert img.stat().st_size == 40960


def test_unknown_board(tmp_path):
    line = one_line_error(outstack("sim", "--board", "pyboard9", "--fresh", "--no-attach"),
                           "unknown board 'pyboard9'")
    assert "rp2040" in line and "esp32" in line and "stm32" in line


def test_watchdog_above_board_limit_leaves_image(tmp_path):
    img = tmp_path / "flash.img"
    image.build(img, "rp2040", image.layout("rp2040", DEMO))
    before = _digest(img)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"watchdog_ms": 9000}))
    one_line_error(outstack("sim", str(img), "--board", "rp2040", "--fresh", "--config", str(cfg),
                             "--no-attach"), "9000 ms is above the rp2040 limit of 8388 ms")
    assert _digest(img) == before
    cfg.write_text(json.dumps({"watchdog_ms": 40000}))
    one_line_error(outstack("image", "build", str(img), "--board", "stm32", "--config", str(cfg)),
                    "above the stm32 limit of 32768 ms")
    assert _digest(img) == before


def test_config_that_is_not_json(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("{watchdog_ms: 10")
    one_line_error(outstack("image", "build", str(tmp_path / "x.img"), "--config", str(cfg)),
                    "not valid JSON")
    assert not (tmp_path / "x.img").exists()


def _start_sim(*args):
    proc = subprocess.Popen([str(BIN / "outstack"), "sim", *args, "--no-attach"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    line = ""
    while "USB REPL" not in line and time.monotonic() < deadline:
        line = proc.stdout.readline()
    assert "USB REPL" in line, proc.stderr.read() if proc.poll() is not None else line
    return proc


def test_port_and_image_already_in_use(tmp_path):
    img = tmp_path / "flash.img"
    image.build(img, "unix", image.layout("unix", DEMO))
    link = tmp_path / "board-usb"
    first = _start_sim(str(img), "--link", str(link))
    try:
        target = link.resolve()
        other = tmp_path / "other.img"
        image.build(other, "unix", image.layout("unix", DEMO))
        one_line_error(outstack("sim", str(other), "--link", str(link), "--no-attach"),
                        f"port {link} is in use by another virtual board")
        assert link.resolve() == target  # the running board's link was not replaced
        one_line_error(outstack("sim", str(img), "--no-attach"),
                        f"flash image {img} is in use by another virtual board")
    finally:
        first.terminate()
        first.wait(10)
    assert not link.exists()


def test_link_over_a_real_file_is_refused(tmp_path):
    img = tmp_path / "flash.img"
    image.build(img, "unix", image.layout("unix", DEMO))
    precious = tmp_path / "notes.txt"
    precious.write_text("mine")
    one_line_error(outstack("sim", str(img), "--link", str(precious), "--no-attach"),
                    "not a virtual board link")
    assert precious.read_text() == "mine"


def test_cli_without_command_shows_help():
    out = subprocess.run([sys.executable, "-m", "outstack.cli"], capture_output=True, text=True)
    assert out.returncode == 2 and "sim" in out.stdout and "deploy" in out.stdout


def test_crashlog_on_a_port_with_no_board(tmp_path):
    one_line_error(outstack("crashlog", "--port", str(tmp_path / "ttyNONE")), "no board at")


def test_crashlog_on_a_board_without_the_framework(make_board):
    vb = make_board(files={"/lib/outstack/crashlog.py": "raise ImportError('gone')\n",
                           "/main.py": "print('bare')\n"})
    one_line_error(outstack("crashlog", "--port", vb.usb_port), "failed reading its crash log", "ImportError: gone")
