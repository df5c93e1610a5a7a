# The sensor: samples the board's analog input on a timer and publishes each reading.
# Priority 2: a late sample is a wrong sample; everything downstream can wait a little.
from outstack import hal
from outstack.server import Server


class Sensor(Server):
    def init(self, config, state):
        self.samples = 0
        self.last = 0
        if not hal.has_adc():  # mps2-an385 has none: the demo runs on, with no readings
            self.log.warning("no analog input on %s: no readings" % hal.board.NAME)
            return
        self.every(config["period_ms"], "tick")

    def handle_cast(self, msg, arg):
        if msg != "tick":
            return super().handle_cast(msg, arg)
        self.last = hal.adc_read()  # a small int: publishing it allocates nothing
        self.samples += 1
        self.publish("readings", "sample", self.last)

    def handle_call(self, msg, arg):
        if msg == "stats":
            return (self.samples, self.last)
        return super().handle_call(msg, arg)
