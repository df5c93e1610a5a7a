# Test firmware for the replay test: a parser that one message sequence crashes.
from outstack.system import System
import app

System(app.TABLE).run_forever()
