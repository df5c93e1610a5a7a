"""`System(table, repl="aiorepl")` with micropython-lib's real aiorepl, taken from the mip
index of the pinned snapshot: a user at the USB REPL pty (pyserial, as a terminal program)
gets aiorepl's prompt while the servers run, evaluates expressions, awaits calls to a server
and sees its state change."""

import re
import time

import pytest
import serial

from outstack import mipindex

from tests.conftest import need

need(mipindex.missing(), "micropython-lib mip index")

MAIN = """from outstack.server import Server
from outstack.system import System


class Counter(Server):
    def init(self, config, state):
        self.n = 0

    def handle_cast(self, msg, arg):
        self.n += arg

    def handle_call(self, msg, arg):
        return self.n


System({"counter": {"factory": Counter, "priority": 2, "inbox": 8}}, repl=%r).run_forever()
"""
WAIT_S = 60.0  # generous: a busy machine is slow, never wrong


def firmware(tmp_path, requirements, repl="aiorepl"):
    fw = tmp_path / "fw"
    fw.mkdir()
    (fw / "main.py").write_text(MAIN % repl)
    (fw / "requirements.txt").write_text(requirements)
    return fw


class Terminal:
    """The user's side of the USB REPL pty: what was typed, and everything read since."""

    def __init__(self, port):
        self.link = serial.Serial(port, timeout=0.1)
        self.seen = b""

    def until(self, pattern: bytes, since: int = 0) -> re.Match:
        end = time.monotonic() + WAIT_S
        while True:
            found = re.search(pattern, self.seen[since:], re.S)
            if found:
                return found
            assert time.monotonic() < end, f"no {pattern!r} in {self.seen[since:]!r}"
            self.seen += self.link.read(256)

    def ask(self, line: str) -> str:
        """Type `line` and Enter; the answer printed before the next prompt."""
        start = len(self.seen)
        self.link.write(line.encode() + b"\r")
        got = self.until(re.escape(line.encode()) + rb"\r?\n(.*?)--> ", start)
        return got.group(1).decode().strip()

    def close(self):
        self.link.close()


@pytest.fixture
def terminal():
    made = []

    def make(port):
        made.append(Terminal(port))
        return made[-1]

    yield make
    for t in made:
        t.close()


def test_aiorepl_prompt_on_the_usb_repl_while_the_servers_run(make_board, tmp_path, terminal):
    vb = make_board(firmware=firmware(tmp_path, "logging\naiorepl\n"))
    user = terminal(vb.usb_port)
    user.link.write(b"\r")  # the banner went by before we opened the port: ask for a prompt
    user.until(rb"--> ")
    assert b"Starting asyncio REPL..." in vb.output  # micropython-lib's aiorepl, not ours
    assert b">>> " not in vb.output[vb.output.index(b"Starting asyncio REPL"):]
    assert user.ask("6 * 7") == "42"
    assert user.ask("import aiorepl") == ""
    assert user.ask("aiorepl.__version__") == "'0.2.4'"  # micropython-lib's, from the index
    assert user.ask('await call("counter", "get")') == "0"
    assert user.ask('kernel.client("counter").try_cast("add", 5)') == ""
    assert user.ask('await call("counter", "get")') == "5"  # the server ran the cast meanwhile
    assert user.ask("total = 0") == ""
    assert user.ask('total = await call("counter", "get") * 2') == ""
    assert user.ask("total") == "10"
    said = user.ask("1 / 0")
    assert said == "ZeroDivisionError: divide by zero"  # reported, the prompt goes on
    assert user.ask('sorted(p for p in kernel.names)') == "['counter']"


def test_without_aiorepl_installed_the_builtin_prompt_runs_and_says_so(make_board, tmp_path):
    vb = make_board(firmware=firmware(tmp_path, "logging\n"))
    vb.wait_for("booted")
    end = time.monotonic() + WAIT_S
    while b"aiorepl is not installed" not in vb.output or b">>> " not in vb.output:
        assert time.monotonic() < end, vb.output.decode(errors="replace")
        time.sleep(0.05)
    assert b"repl='aiorepl' but aiorepl is not installed: the built-in prompt runs" in vb.output
    assert b"Starting asyncio REPL" not in vb.output
