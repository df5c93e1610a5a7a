"""The prompt beside the servers: typed lines run while the servers keep serving."""

import time

MAIN = """
from outstack.system import System
from outstack.server import Server

class Counter(Server):
    def init(self, config, state):
        self.n = 0
        self.every(20, "tick")

    def handle_cast(self, msg, arg):
        self.n += 1

    def handle_call(self, msg, arg):
        return self.n

System({"counter": {"factory": Counter}}, config_path="/none.json").run_forever()
"""


def _typed(vb, text, expect, timeout=5.0):
    start = len(vb.output)
    vb.type(text.encode() + b"\r")
    end = time.monotonic() + timeout
    while expect.encode() not in vb.output[start:] and time.monotonic() < end:
        time.sleep(0.02)
    return vb.output[start:].decode(errors="replace")


def test_prompt_answers_while_servers_run(make_board):
    vb = make_board(files={"/main.py": MAIN})
    end = time.monotonic() + 5
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    out = _typed(vb, "6 * 7", "42")
    assert "42" in out
    first = _typed(vb, "await call('counter', 'get')", "\n>>> ")
    time.sleep(0.3)
    second = _typed(vb, "await call('counter', 'get')", "\n>>> ")
    n1 = int(first.split("\r\n")[1])
    n2 = int(second.split("\r\n")[1])
    assert n2 >= n1 + 5, (first, second)  # the ticker kept running between the two
    out = _typed(vb, "1/0", "ZeroDivisionError")
    assert "ZeroDivisionError" in out
    assert "42" in _typed(vb, "40 + 2", "42")  # the prompt survived the error
