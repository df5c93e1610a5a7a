# An example server: it owns a counter and answers calls. Handlers run to completion and
# never await; a crash is restarted by the supervisor and reported (outstack crashlog).
from outstack.server import Server


class Hello(Server):
    def init(self, config, state):
        self.greeting = config["greeting"]
        self.greeted = 0

    def handle_call(self, msg, arg):  # the return value is the reply
        if msg == "greet":
            self.greeted += 1
            return "%s, %s" % (self.greeting, arg)
        if msg == "count":
            return self.greeted
        return super().handle_call(msg, arg)  # BadMessage for the caller
