"""The prompt beside the servers: typed lines run while the servers keep serving."""

import time

from tests.conftest import typed

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


def test_prompt_answers_while_servers_run(make_board):
    vb = make_board(files={"/main.py": MAIN})
    end = time.monotonic() + 5
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    assert typed(vb, "6 * 7") == "42"
    n1 = int(typed(vb, "await call('counter', 'get')"))
    time.sleep(0.3)
    n2 = int(typed(vb, "await call('counter', 'get')"))
    assert n2 >= n1 + 5, (n1, n2)  # the ticker kept running between the two
    assert typed(vb, "1/0") == "Traceback (most recent call last):"
    assert "ZeroDivisionError: divide by zero" in vb.output.decode(errors="replace")
    assert typed(vb, "40 + 2") == "42"  # the prompt survived the error
