from outstack.errors import ServerDown
from outstack.server import Server


class Parser(Server):
    # Nested frames: ("open", tag), ("data", bytes), ("close", None).
    def init(self, config, state):
        self.stack = []
        self.pending = 0  # data bytes in the innermost frame
        self.frames = 0

    def handle_cast(self, msg, arg):
        if msg == "open":
            self.stack.append(arg)
            self.pending = 0
        elif msg == "data":
            self.pending += len(arg)
        elif msg == "close":
            if self.pending and len(self.stack) == 1:
                self.stack.pop()  # flush the data frame ...
            self.stack.pop()  # ... and close it: the bug pops twice at depth 1
            self.pending = 0
            self.frames += 1


class Feeder(Server):
    def init(self, config, state):
        self.n = 0
        self.depth = 0
        self.seed = 12345
        self.bug_at = config["bug_at"]
        self.bugged = False
        self.every(config["ms"], "go")

    def _rand(self, k):
        self.seed = (self.seed * 1103515245 + 12345) & 0x7FFFFFFF
        return self.seed % k

    def handle_cast(self, msg, arg):
        try:
            self._next()
        except ServerDown:
            self.depth = 0  # the parser restarts empty: start over with it

    def _next(self):
        self.n += 1
        c = self.client("parser")
        if self.n >= self.bug_at and self.depth == 1 and not self.bugged:
            self.bugged = True
            c.try_cast("data", b"xyz")
            c.try_cast("close")  # the one sequence the parser gets wrong
            self.depth = 0
            return
        r = self._rand(3)
        if r == 0 and self.depth < 4 or self.depth == 0:
            self.depth += 1
            c.try_cast("open", "t%d" % self.depth)
        elif r == 1 and self.depth > 1:
            c.try_cast("data", b"ab")
        elif self.depth > 1:
            self.depth -= 1
            c.try_cast("close")
