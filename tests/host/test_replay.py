"""Record and replay: a parser on a virtual board (tests/host/fw_replay) crashes on one
message sequence after about a thousand messages; `outstack replay` takes its crash record
from the board's console and reproduces the crash, with the same traceback, on a fresh
virtual board running the same server code."""

import json
import re
import time
from pathlib import Path

from tests.conftest import one_line_error, outstack

FW = Path(__file__).parent / "fw_replay"


def wait_for_record(port, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = outstack("console", "--port", port, "--json", "crashes")
        if out.returncode == 0 and json.loads(out.stdout)["servers"]:
            return json.loads(out.stdout)["servers"]
        time.sleep(0.5)
    raise AssertionError("the parser did not crash")


def test_replay_reproduces_the_crash_after_a_thousand_messages(make_board, tmp_path):
    vb = make_board(firmware=FW)
    kept = wait_for_record(vb.usb_port)
    summary = kept["parser"]
    assert summary["error"] == "IndexError: pop from empty list"
    assert 900 <= summary["count"] <= 1200 and summary["exact"], summary
    saved = tmp_path / "parser.json"
    out = outstack("replay", "--port", vb.usb_port, "--firmware", str(FW), "--save", str(saved),
                   timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    n = summary["count"]
    assert f"crashed at message {n} of {n}: IndexError: pop from empty list" in out.stdout
    assert "reproduced: the same traceback as on the board" in out.stdout
    assert re.search(r'File "app/parse.py", line \d+, in handle_cast', out.stdout)
    rec = json.loads(saved.read_text())
    assert len(rec["msgs"]) == n and rec["msgs"][-2:] == [["cast", rec["msgs"][-2][1], "'data'", "b'xyz'"],
                                                         ["cast", rec["msgs"][-1][1], "'close'", "None"]]
    # deterministic: the saved record replays to the same lines, again and again
    again = [outstack("replay", "--record", str(saved), "--firmware", str(FW), timeout=180)
             for _ in range(2)]
    assert [a.returncode for a in again] == [0, 0]
    assert again[0].stdout.splitlines()[1:] == again[1].stdout.splitlines()[1:] \
        == out.stdout.splitlines()[2:]
    # and it can fail: without the last message nothing crashes, and replay says so
    rec["msgs"] = rec["msgs"][:-1]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(rec))
    out = outstack("replay", "--record", str(cut), "--firmware", str(FW), timeout=180)
    assert out.returncode == 1 and f"not reproduced: all {n - 1} messages were handled" in out.stdout
    # the board went on: the parser restarted and serves
    out = outstack("console", "--port", vb.usb_port, "--json", "servers")
    parser = [r for r in json.loads(out.stdout)["servers"] if r["name"] == "parser"][0]
    assert parser["state"] == "running" and parser["restarts"] == 1
    # done with it: the record can go
    cleared = outstack("console", "--port", vb.usb_port, "crashes", "clear")
    assert cleared.stdout.strip().startswith("removed 1 server crash record(s) and ")
    one_line_error(outstack("replay", "--port", vb.usb_port), "keeps no server crash record")


def test_replay_refuses_bad_records(tmp_path, make_board):
    not_rec = tmp_path / "x.json"
    not_rec.write_text('{"hello": 1}')
    one_line_error(outstack("replay", "--record", str(not_rec)), "not a server crash record")
    garbage = tmp_path / "g.json"
    garbage.write_text("{{{")
    one_line_error(outstack("replay", "--record", str(garbage)), "cannot read crash record")
    one_line_error(outstack("replay", "--record", str(tmp_path / "missing.json")),
                   "cannot read crash record")
    rec = {"server": "parser", "factory": "app.parse:Parser", "config": {}, "tb": "",
           "msgs": [["cast", 0, "'open'", "<Tag object at 0x3f>"]]}
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(rec))
    one_line_error(outstack("replay", "--record", str(odd), "--server", "other"),
                   "is the record of 'parser', not 'other'")
    one_line_error(outstack("replay", "--record", str(odd), "--firmware", str(FW), timeout=180),
                   "replay failed", "cannot be rebuilt")
    vb = make_board(firmware=FW, files={"/app/__init__.py": "TABLE = {}\n"})
    one_line_error(outstack("replay", "--port", vb.usb_port), "keeps no server crash record")


def test_tracebacks_compare_from_where_the_server_code_was_entered():
    from outstack.commands.replay import handler_frames

    board = ('Traceback (most recent call last):\n  File "/lib/outstack/server.py", line 167, in '
             'serve_one\n  File "/lib/outstack/kernel.py", line 184, in run_handler\n  File '
             '"app/parse.py", line 21, in handle_cast\nIndexError: pop from empty list')
    replay = ('Traceback (most recent call last):\n  File "/lib/outstack/debug/replay.py", line 52, '
              'in replay\n  File "lib/outstack/kernel.py", line 184, in run_handler\n  File '
              '"/app/parse.py", line 21, in handle_cast\nIndexError: pop from empty list')
    assert handler_frames(board) == handler_frames(replay) == [
        'File "app/parse.py", line 21, in handle_cast', "IndexError: pop from empty list"]
    assert handler_frames(replay.replace("line 21", "line 22")) != handler_frames(board)
    in_init = ('Traceback (most recent call last):\n  File "/lib/outstack/supervisor.py", line 110, '
               'in _start\n  File "app/x.py", line 5, in init\nKeyError: k')
    replayed = ('Traceback (most recent call last):\n  File "/lib/outstack/debug/replay.py", line 47, '
                'in replay\n  File "app/x.py", line 5, in init\nKeyError: k')
    assert handler_frames(in_init) == handler_frames(replayed)
