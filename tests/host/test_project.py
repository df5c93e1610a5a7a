"""A project of one's own, end to end, in a folder outside this checkout: `outstack new`, a
server added by hand, `outstack sim` booting that firmware (not the demo), `outstack dev`
hot-swapping an edit (and rolling back one that raises, with its traceback on the host), and
`outstack deploy` leaving exactly the project on another board."""

import json
import signal
import subprocess
import time

import pytest
import serial

from tests.conftest import BIN, mpremote, outstack

COUNTER = '''
from outstack.server import Server


class Counter(Server):
    def init(self, config, state):
        self.n = config["start"]

    def handle_cast(self, msg, arg):
        self.n += arg

    def handle_call(self, msg, arg):
        return self.n
'''
ADD = '''
TABLE["counter"] = {"factory": "app.counter:Counter", "priority": 2,
                    "config": {"start": 40}}
'''
WALK = """import os
def walk(d):
    for e in os.ilistdir(d or '/'):
        p = d + '/' + e[0]
        if e[1] & 0x4000:
            walk(p)
        else:
            print(p)
walk('')
"""


def wait(what, check, timeout=60.0):
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.05)


def live(port: str, line: str, timeout=30.0) -> str:
    """Type a line at the board's live prompt over its USB pty; the line it answered."""
    with serial.Serial(port, timeout=0.1) as s:
        s.write(line.encode() + b"\r")
        seen = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            seen += s.read(256)
            text = seen.decode(errors="replace").replace("\r\n", "\n")
            at = text.find(line)
            if at >= 0 and "\n>>> " in text[at:]:
                return text[at + len(line):].split("\n>>> ", 1)[0].strip()
    raise AssertionError(f"no answer to {line!r}: {seen!r}")


class Proc:
    """A CLI command left running (sim, dev), its output collected as it comes."""

    def __init__(self, *args, cwd):
        self.p = subprocess.Popen([str(BIN / "outstack"), *args], cwd=cwd, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1)
        self.lines: list[str] = []
        import threading

        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, needle, timeout=60.0):
        return wait(f"{needle!r} in:\n{self.text()}",
                    lambda: next((x for x in self.lines if needle in x), None), timeout)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


@pytest.fixture
def myapp(tmp_path):
    r = outstack("new", "myapp", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    app = tmp_path / "myapp"
    assert "made project 'myapp'" in r.stdout and (app / "outstack.toml").is_file()
    assert (app / "keys/ota-key.pem").stat().st_mode & 0o777 == 0o600
    (app / "firmware/app/counter.py").write_text(COUNTER)
    with open(app / "firmware/app/__init__.py", "a") as f:
        f.write(ADD)
    return app


def test_new_project_runs_on_sim_and_dev_hot_swaps_edits(myapp):
    sim = Proc("sim", "--no-attach", cwd=myapp)
    dev = None
    try:
        sim.wait_line("UART1:")
        assert any("project 'myapp'" in x for x in sim.lines), sim.text()
        info = wait("build/sim.json", lambda: (myapp / "build/sim.json").is_file()
                    and json.loads((myapp / "build/sim.json").read_text()))
        wait("the live prompt", lambda: live(info["usb"], "1+1") == "2")
        servers = outstack("console", "servers", cwd=myapp)  # no --port: the project's board
        assert servers.returncode == 0, servers.stderr
        assert "counter" in servers.stdout and "hello" in servers.stdout
        assert "sensor" not in servers.stdout  # not the demo
        assert live(info["usb"], "await call('counter', 'get')") == "40"
        assert live(info["usb"], "await call('hello', 'greet', 'Ada')") == "'hello, Ada'"

        dev = Proc("dev", cwd=myapp)
        dev.wait_line("[dev] watching")
        hello = myapp / "firmware/app/hello.py"
        hello.write_text(hello.read_text().replace('"%s, %s"', '"%s again, %s"'))
        done = dev.wait_line("[dev] app/hello.py: ")
        assert "installed update 1" in done and "hello restarted, healthy" in done, dev.text()
        assert "s after the save" in done
        assert live(info["usb"], "await call('hello', 'greet', 'Ada')") == "'hello again, Ada'"
        assert live(info["usb"], "await call('counter', 'get')") == "40"  # not restarted

        good = hello.read_text()
        hello.write_text(good.replace("self.greeted = 0",
                                      "self.greeted = 0\n        raise ValueError('broken on purpose')"))
        back = dev.wait_line("[dev] app/hello.py: rolled back")
        assert "update 2" in back and "ValueError: broken on purpose" in back, dev.text()
        dev.wait_line("    ValueError: broken on purpose")  # the traceback, shown here
        assert any('/app/hello.' in x and 'line' in x and 'in init' in x for x in dev.lines), dev.text()
        assert live(info["usb"], "await call('hello', 'greet', 'Ada')") == "'hello again, Ada'"
        assert sim.p.poll() is None and "reset" not in sim.text().lower()
    finally:
        if dev:
            dev.stop()
        sim.stop()
    assert not (myapp / "build/sim.json").exists()  # withdrawn when the board went off


def test_deploy_leaves_exactly_the_project(myapp, make_board):
    vb = make_board(files={"/data/old.csv": "1,2\n"})  # the demo, and data of its own
    r = outstack("deploy", "--port", vb.usb_port, "--board", "unix", cwd=myapp)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deployed project 'myapp'" in r.stdout
    assert "removed /app/sensor.mpy (not in the project)" in r.stdout
    # the board runs the project now (mpremote below stops main.py: ask first)
    wait("the project's live prompt", lambda: live(vb.usb_port, "1+1") == "2")
    servers = outstack("console", "--port", vb.usb_port, "servers", cwd=myapp)
    assert servers.returncode == 0, servers.stderr
    assert "counter" in servers.stdout and "sensor" not in servers.stdout
    files = set(mpremote(vb.usb_port, "exec", WALK).stdout.split())
    ours = {f for f in files if not f.startswith(("/.outstack/", "/data/"))}
    staged = myapp / "build/deploy-unix"
    want = {"/" + p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    # and the micropython-lib packages mip installed (or found there already)
    want |= {line.split()[1] for line in r.stdout.splitlines()
             if line.startswith(("  installed /", "  same      /"))}
    assert ours == want, (ours ^ want)
    assert "/app/counter.mpy" in ours and not [f for f in ours if f.startswith("/app/sensor")]
    assert "/data/old.csv" in files and "kept    /data/old.csv" in r.stdout  # data stays

