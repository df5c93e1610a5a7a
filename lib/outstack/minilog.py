# The subset of micropython-lib's `logging` the framework uses, for boards where that
# package is not installed: named loggers with levels and handlers, and its record (the
# logger formats LogRecord.message). Nothing is printed unless a handler prints it
# (outstack.log gives each server a ring handler).
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_loggers: dict = {}


class LogRecord:
    # As micropython-lib's: the message comes formatted, and a logger reuses its one record.
    def set(self, name, level, message):
        self.name = name
        self.levelno = level
        self.message = message


class Handler:
    def __init__(self, level=0):
        self.level = level

    def emit(self, record):
        pass


class Logger:
    def __init__(self, name):
        self.name = name
        self.level = 0
        self.handlers = []
        self.record = LogRecord()

    def setLevel(self, level):
        self.level = level

    def isEnabledFor(self, level):
        return level >= (self.level or WARNING)

    def addHandler(self, h):
        self.handlers.append(h)

    def log(self, level, msg, *args):
        if self.isEnabledFor(level):
            if args:
                msg = msg % (args[0] if isinstance(args[0], dict) else args)
            self.record.set(self.name, level, msg)
            for h in self.handlers:
                h.emit(self.record)

    def debug(self, msg, *args):
        self.log(DEBUG, msg, *args)

    def info(self, msg, *args):
        self.log(INFO, msg, *args)

    def warning(self, msg, *args):
        self.log(WARNING, msg, *args)

    def error(self, msg, *args):
        self.log(ERROR, msg, *args)

    def critical(self, msg, *args):
        self.log(CRITICAL, msg, *args)

    def exception(self, msg, *args):
        self.log(ERROR, msg, *args)


def getLogger(name="root"):
    lg = _loggers.get(name)
    if lg is None:
        lg = _loggers[name] = Logger(name)
    return lg
