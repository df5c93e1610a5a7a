from outstack.server import Server


class Ticker(Server):
    def init(self, config, state):
        self.n = 0
        self.every(config["ms"], "tick")
        self.log.info("ticker up, every %d ms", config["ms"])

    def handle_cast(self, msg, arg):
        self.n += 1
        self.try_cast("sink", "count", self.n)
        self.log.debug("tick %d", self.n)


class Sink(Server):
    def init(self, config, state):
        self.total = 0

    def handle_cast(self, msg, arg):
        self.total += arg

    def handle_call(self, msg, arg):
        return self.total


class Leaky(Server):
    # The seed's field bug in miniature: every message keeps a buffer it never lets go.
    def init(self, config, state):
        self.history = []
        self.every(config["ms"], "work")

    def handle_cast(self, msg, arg):
        self.history.append(bytearray(256))
