# The console's commands, run on the board against the live system. Each takes a line of
# words and returns plain data (dicts, lists, numbers, text) that the host formats; the
# same commands answer on the live prompt (USB REPL), UART1 and TCP. Bad input raises
# ValueError or OutstackError with a message for a person; the system is never touched then.
from outstack.errors import OutstackError


async def _nothing():
    pass


_c = _nothing()
_CORO = type(_c)  # what calling an async def gives (a generator, on MicroPython)
_c.close()


class Console:
    def __init__(self, system):
        self.system = system
        self.kernel = system.kernel
        self.auth = None  # outstack.debug.auth.Auth, made when a link first needs it

    async def run(self, line):
        words = line.split()
        if not words:
            raise ValueError("empty command: try help")
        cmd, args = words[0], words[1:]
        # Matched by value first: getattr would keep every word a link sends (interned).
        fn = getattr(self, "c_" + cmd) if cmd in _HERE else None
        if fn is not None:
            return await _result(fn(*args))
        where = _WHERE.get(cmd if args or cmd != "trace" else "trace_all")
        if where is None:
            raise ValueError("unknown command %r: one of %s"
                             % (cmd, ", ".join(sorted(k for k in _WHERE if k != "trace_all")
                                               + list(_HERE))))
        name = "outstack.debug." + where[0]
        import gc

        gc.collect()  # room for the command's module, in one piece if possible
        try:  # loaded for this command, let go after it: a Pico's heap holds no idle code
            return await _result(getattr(__import__(name, None, None, ("x",)), where[1])(self, *args))
        finally:
            _free()

    # ----- the command kept here (view.py reads, change.py changes, crashes.py the rest) ---
    def c_challenge(self):
        from outstack.debug import auth

        return auth.of(self).challenge()


_HERE = ("challenge",)  # the c_ method above

# command -> (module under outstack.debug, function)
_WHERE = {"servers": ("view", "servers"), "info": ("view", "info"), "log": ("view", "log"),
          "graph": ("view", "graph"), "mem": ("view", "mem"), "trace_all": ("view", "trace_all"),
          "level": ("change", "level"), "trace": ("change", "trace"),
          "record": ("change", "record"), "restart": ("change", "restart"),
          "fault": ("change", "fault"), "help": ("crashes", "help"),
          "crashes": ("crashes", "crashes"), "recording": ("crashes", "recording")}


async def _result(out):
    if isinstance(out, _CORO):  # an async command (restart waits for the stop)
        out = await out
    return out


def _free():
    from outstack import unload

    unload("outstack.debug", ("view", "change", "crashes", "mem"))


class Stream:
    # An answer too big for RAM at once: JSON text in pieces, sent as they are read.
    def __init__(self, pieces):
        self.pieces = pieces


async def answer_for(server, line):
    """answer() for a server that carries the console on a link: it needs the "debug"
    right (the System), and a command that changes state must be signed (debug/auth.py);
    without either, the answer is an error, not a crash of the link."""
    import json

    system = None
    try:
        system = server.right("debug")
        if system.console is None:
            system.console = Console(system)
        from outstack.debug import auth

        line = await auth.admit(system.console, getattr(server, "config", None) or {}, line)
    except (ValueError, OutstackError) as e:
        if system is not None:
            _let_go(system)
        return (json.dumps({"error": str(e)}),)
    return await answer(system, line)


async def answer(system, line):
    """One console line -> its answer as JSON text, {"ok": data} or {"error": "..."}, in
    pieces (an iterable of str/bytes); never raises. On the USB REPL no signature is needed
    (whoever holds it can run any code anyway); a signed line is checked all the same."""
    import json

    try:
        if system.console is None:
            system.console = Console(system)
        if line.startswith("signed "):
            from outstack.debug import auth

            line = await auth.admit(system.console, {}, line)
        data = await system.console.run(line)
        if isinstance(data, Stream):
            return _wrap(data.pieces)
        data = {"ok": data}
    except TypeError as e:  # wrong number of words for the command
        data = {"error": "%s: wrong arguments (%s); try help" % (line.split()[0], e)}
    except (ValueError, OutstackError, KeyError) as e:
        data = {"error": str(e)}
    except Exception as e:
        data = {"error": "%s failed: %s: %s" % (line, type(e).__name__, e)}
    finally:
        _let_go(system)
    try:
        return (json.dumps(data),)
    except Exception as e:
        return (json.dumps({"error": "the answer could not be encoded: %r" % e}),)


async def over_link(link, ask):
    # A CONSOLE frame on the update link (outstack/ota/receive.py): answered by OUT frames
    # and DONE, or FAIL with why; ask: async fn(line) -> the answer's pieces, None where this
    # link carries no console. "@TAG command": the tag comes back on every reply to it
    # (DONE's payload, a FAIL's first word), so an answer that comes late is never taken for
    # another's. The link lives on whatever one command does.
    from outstack.ota import link as L

    raw = bytes(link.payload())
    tag = b""
    if raw.startswith(b"@"):
        tag, _, raw = raw.partition(b" ")
        tag = tag[:_TAG] + b" "
    why = b"no console on this link"
    try:
        if ask is not None:
            why = b"a console command must be UTF-8 text"
            line = raw.decode()
            why = b"out of memory for this console command: try again, or free RAM"
            for piece in await ask(line):
                piece = piece.encode() if isinstance(piece, str) else piece
                for i in range(0, len(piece), 1024):
                    await link.send(L.OUT, piece[i : i + 1024])
            await link.send(L.DONE, tag[:-1])
            return
    except (UnicodeError, MemoryError):
        import gc

        gc.collect()  # the next command may find room
    finally:
        from outstack import unload

        unload("outstack.debug", ("console",))  # as after any command (_let_go)
    await link.send(L.FAIL, tag + why)


_TAG = 17  # "@" and up to 16 characters of a console command's tag


def _let_go(system):
    # The console's own code goes too, until the next command (an answer still streaming
    # keeps what it needs alive; outstanding challenges stay on the System: auth.of).
    from outstack import unload

    c = system.console
    if c is None:
        return
    system.console = None
    unload("outstack.debug", ("console", "auth"))


def _wrap(pieces):
    yield '{"ok": '
    for p in pieces:
        yield p
    yield "}"
