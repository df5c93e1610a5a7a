# Per-server logs through micropython-lib's `logging` (the firmware requires it; where it is
# not installed, outstack.minilog stands in with the same small API). Every server gets the
# logger named after it, with a ring of its last records that the console reads; levels
# are set per server at run time. The ring and the level outlive restarts of the server.
from time import ticks_ms

try:
    import logging  # type: ignore[import-not-found]  # micropython-lib's: not in the port stubs
except ImportError:
    from outstack import minilog as logging

RING = 16  # records kept per server
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_rings: dict = {}  # server name -> RingHandler


class RingHandler(logging.Handler):
    def __init__(self, size=RING):
        super().__init__()
        self.size = size
        self.rec: list = [None] * size
        self.n = 0

    def emit(self, record):
        msg = getattr(record, "msg", None)
        if msg is None:  # micropython-lib's logging: the text is formatted already
            msg = record.message
        elif record.args:
            try:
                msg = msg % record.args
            except Exception:  # a bad format string must not kill the handler
                msg = "%s %r" % (msg, record.args)
        self.rec[self.n % self.size] = (ticks_ms(), record.levelno, str(msg))
        self.n += 1

    def items(self):
        first = max(0, self.n - self.size)
        return [self.rec[i % self.size] for i in range(first, self.n)]


def get(name):
    """The logger of server `name`, with its ring attached (once)."""
    lg = logging.getLogger(name)
    if name not in _rings:
        h = _rings[name] = RingHandler()
        lg.addHandler(h)
        if not lg.level:
            lg.setLevel(LEVELS["INFO"])
    return lg


def records(name):
    h = _rings.get(name)
    return h.items() if h else []


def set_level(name, level):
    if isinstance(level, str):
        if level.upper() not in LEVELS:
            raise ValueError("unknown log level %r: one of %s" % (level, ", ".join(LEVELS)))
        level = LEVELS[level.upper()]
    get(name).setLevel(level)
    return level


def level_of(name):
    return logging.getLogger(name).level if name in _rings else 0


def backend():
    return logging.__name__
