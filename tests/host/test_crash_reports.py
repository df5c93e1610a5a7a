"""Your own firmware on a virtual board, as the issue's user met it: a server the config does
not list runs, a bad setting is one line while the defaults run, a server sending to a
disabled one is stopped instead of resetting the board into safe mode, and a server that
crashes with nothing recording leaves its traceback on the board output, in `console
crashes` and, after a reset, in `outstack crashlog`."""

import json
import time

from tests.conftest import outstack, text, typed, wait_text

FIRMWARE = """
from outstack.system import System
from outstack.server import Server

class Fragile(Server):
    def init(self, config, state):
        self.n = 0

    def handle_call(self, msg, arg):
        if msg == "parse":
            return int(arg)
        self.n += 1
        return self.n

class Caller(Server):
    def init(self, config, state):
        self.every(20, "tick")

    def handle_cast(self, msg, arg):
        self.try_cast("extra", "ping")

class Quiet(Server):
    def handle_call(self, msg, arg):
        return "ok"

    def handle_cast(self, msg, arg):
        pass

TABLE = {"fragile": {"factory": Fragile}, "caller": {"factory": Caller, "grants": ("extra",)},
         "extra": {"factory": Quiet}, "unlisted": {"factory": Quiet}}
System(TABLE).run_forever()
"""
CONFIG = {"watchdog_ms": 1000, "safe_mode": {"crashes": 3, "window_ms": 600000},
          "servers": {"fragile": {"priority": 7}, "caller": {}, "extra": {"enabled": False}}}
BAD = "/config.json: 'fragile': priority must be 0..3, not 7; running the built-in defaults for priority"


def ask(vb, line, needle) -> str:
    """Type a line at the live prompt and wait for `needle` in what the board says after it."""
    start = len(vb.output)
    vb.type(line.encode() + b"\r")
    return wait_text(vb, needle, start)


def console(vb, *words):
    out = outstack("console", "--port", vb.usb_port, *words, timeout=60)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return out.stdout


def resets(vb) -> list:
    return [e for e in vb.events if e.kind in ("reset", "wdt-reset", "crash", "halted")]


def board(make_board):
    vb = make_board(files={"/main.py": FIRMWARE, "/config.json": json.dumps(CONFIG)})
    wait_text(vb, ">>> ")
    return vb


def test_config_errors_and_a_send_to_a_disabled_server_never_reset_the_board(make_board):
    vb = board(make_board)
    said = text(vb)
    assert [line for line in said.splitlines() if "priority" in line] == ["outstack: " + BAD]
    # the caller's first tick sends to "extra", which is off: the caller stops, nothing resets
    wait_text(vb, "'caller' stopped, not restarted")
    assert "NoSuchServer" in text(vb)
    assert typed(vb, "await call('unlisted', 'x')") == "'ok'"  # not listed: it runs
    assert "'caller' is not running" in ask(vb, "await call('caller', 'x')", "NoSuchServer: ")
    assert typed(vb, "await call('fragile', 'count')") == "1"  # defaults for the bad field

    def uptime():
        return json.loads(console(vb, "--json", "servers"))["uptime_ms"]

    while uptime() < 3000:  # well past when the old firmware had reset three times
        time.sleep(0.2)
    rows = {r["name"]: r for r in json.loads(console(vb, "--json", "servers"))["servers"]}
    assert rows["caller"]["state"] == "down" and rows["caller"]["restarts"] == 0, rows
    assert rows["fragile"]["pri"] == 1 and rows["unlisted"]["state"] == "running", rows
    assert "extra" not in rows
    assert resets(vb) == [] and len([e for e in vb.events if e.kind == "booted"]) == 1, vb.events
    assert "SAFE MODE" not in text(vb)
    shown = console(vb, "crashes")
    assert f"said at boot: {BAD}" in shown, shown
    assert "server caller does not run: stopped: it sends to a server that does not run" in shown
    assert "caller crashed: NoSuchServer: no server is registered as 'extra'" in shown, shown


def test_a_crash_with_nothing_recording_leaves_its_traceback_everywhere(make_board):
    vb = board(make_board)
    start = len(vb.output)
    ask(vb, "await call('fragile', 'parse', 'abc')", "ServerCrashed")
    said = wait_text(vb, "outstack: 'fragile' crashed", start)
    said = wait_text(vb, "ValueError: invalid syntax for integer", start)
    assert "Traceback (most recent call last):" in said and "in handle_call" in said, said
    assert typed(vb, "await call('fragile', 'count')") == "1"  # restarted, its state anew

    shown = console(vb, "crashes")
    assert "fragile crashed: ValueError: invalid syntax for integer with base 10" in shown, shown
    assert "in handle_call" in shown and "(restarts so far 0)" in shown, shown
    log = json.loads(console(vb, "--json", "log", "fragile"))["records"]
    assert log[-1][1] == 40 and "in handle_call" in log[-1][2], log  # at ERROR, with traceback

    mark = vb.mark()
    vb.cut_power()
    vb.power_on()
    vb.wait_for("booted", since=mark)
    out = outstack("crashlog", "--port", vb.usb_port)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    head = [i for i, line in enumerate(lines)
            if "fragile crashed: ValueError: invalid syntax for integer" in line]
    assert head, out.stdout
    assert "boot 1" in lines[head[0]] and "in handle_call" in "\n".join(lines[head[0]:]), out.stdout
    assert "said at boot 2:" in out.stdout and BAD in out.stdout, out.stdout


def test_crash_report_bench_runs_on_a_virtual_board(make_board):
    from pathlib import Path

    from tests.conftest import mpremote

    vb = make_board(files={"/main.py": "print('bench board')\n"})
    bench = Path(__file__).resolve().parents[2] / "bench" / "crash_report.py"
    out = mpremote(vb.usb_port, "exec", "BENCH_SHORT=1", "run", str(bench), timeout=300).stdout
    print(out)
    assert "crash report: 3 written" in out and "longest loop wait" in out, out
