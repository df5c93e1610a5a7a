# The device's few error types. Each message says who, what, and what to do about it.


class OutstackError(Exception):
    pass


class NoSuchServer(OutstackError):
    # A send to a name nobody registered (typo, or the server is not in this config).
    pass


class NotPermitted(OutstackError):
    # A server sent where its spec grants no right: add the name to the spec's grants.
    pass


class InboxFull(OutstackError):
    # The non-blocking form found no room; .msg and .arg hand the message back.
    def __init__(self, text, msg=None, arg=None):
        super().__init__(text)
        self.msg = msg
        self.arg = arg


class BadMessage(OutstackError):
    # A message the server does not handle, or with an argument it cannot use. The sender
    # gets it back; the server is not harmed and keeps serving.
    pass


class CallTimeout(OutstackError):
    pass


class ServerDown(OutstackError):
    # The server died, stopped or is restarting; a caller learns at once, not at its timeout.
    pass


class ServerCrashed(ServerDown):
    # The handler raised while serving this very call; the supervisor restarts the server.
    pass


class WatchdogExpired(OutstackError):
    # A server with spec.watchdog_ms did not check in: it is crashed and restarted.
    pass


class ConfigError(OutstackError):
    pass
