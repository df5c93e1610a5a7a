# The demo firmware, an industrial handheld in miniature: it samples, summarises, stores,
# reports and (if configured) uplinks. /config.json picks the servers; app.TABLE has them all.
from outstack import hal
from outstack.system import System
import app


class Demo(System):
    def boot(self):
        super().boot()  # the previous reset's reason is known once the boot check has run
        why = "" if self.last_reset is None else ", last reset: %s" % self.last_reset
        print("Outstack Micro on %s, reset cause %s%s" % (hal.board.NAME, hal.reset_cause(), why))
        return self


Demo(app.TABLE, defaults=app.DEFAULTS).run_forever()
