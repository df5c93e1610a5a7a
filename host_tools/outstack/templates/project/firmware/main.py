# Starts every server of app.TABLE under one supervisor; /config.json can switch servers off
# ("enabled": false) or change their settings without a new firmware.
from outstack.system import System
import app

System(app.TABLE).run_forever()
