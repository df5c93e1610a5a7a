"""The top supervisor's escalation on a real (virtual) board: a clean reset through hal,
the reason kept across it."""

from tests.conftest import mpremote

CRASHER = """
from outstack.system import System
from outstack.server import Server

class Crasher(Server):
    def init(self, config, state):
        self.after(10, "die")

    def handle_cast(self, msg, arg):
        raise RuntimeError("dies on every start")

import asyncio

async def main():
    s = System({"crasher": {"factory": Crasher}}, config_path="/none.json").boot()
    print("previous reset:", s.last_reset)
    if s.last_reset is None:
        await asyncio.sleep(60)

asyncio.run(main())
"""


def test_top_escalation_resets_the_board_and_keeps_the_reason(make_board):
    vb = make_board(files={"/main.py": CRASHER})
    reset = vb.wait_for("reset", timeout=20)
    assert reset.detail == "HARD"
    vb.wait_for("booted", vb.events.index(reset), detail="HARD")
    out = mpremote(vb.usb_port, "resume", "exec", "print(1)")  # the REPL is up again
    assert out.stdout.strip() == "1"
    text = vb.output.decode(errors="replace")
    assert "top supervisor gave up" in text
    assert "previous reset: 'crasher' restarted 3 times in 5000 ms" in text, text[-800:]
