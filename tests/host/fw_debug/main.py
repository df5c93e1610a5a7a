# Test firmware for the console tests: a few servers, the console on UART1 and TCP.
from outstack.system import System
import app

System(app.TABLE, defaults=app.DEFAULTS).run_forever()
