# The device's few error types. Each message says who, what, and what to do about it.
# Those a healthy board never meets are made the first time they are named (__getattr__
# below): until then their classes cost no RAM. They are real classes all the same:
#   NotPermitted(OutstackError)     a server sent where its spec grants no right: add the
#                                   name to the spec's grants
#   BadMessage(OutstackError)       a message the server does not handle, or with an argument
#                                   it cannot use; the sender gets it back, the server keeps
#                                   serving
#   CallTimeout(OutstackError)      no reply within the call's timeout
#   ServerCrashed(ServerDown)       the handler raised while serving this very call; the
#                                   supervisor restarts the server
#   WatchdogExpired(OutstackError)  a server with spec.watchdog_ms did not check in: it is
#                                   crashed and restarted


class OutstackError(Exception):
    pass


class NoSuchServer(OutstackError):
    # A send to a name nobody registered (typo, or the server is not in this config).
    pass


class InboxFull(OutstackError):
    # The non-blocking form found no room; .msg and .arg hand the message back.
    def __init__(self, text, msg=None, arg=None):
        super().__init__(text)
        self.msg = msg
        self.arg = arg


class ServerDown(OutstackError):
    # The server died, stopped or is restarting; a caller learns at once, not at its timeout.
    pass


class ConfigError(OutstackError):
    pass


_LATER = ("NotPermitted", "BadMessage", "CallTimeout", "WatchdogExpired")


def __getattr__(name):
    if name != "ServerCrashed" and name not in _LATER:
        raise AttributeError("outstack.errors has no %r" % name)
    base = ServerDown if name == "ServerCrashed" else OutstackError
    cls = globals()[name] = type(name, (base,), {})
    return cls
