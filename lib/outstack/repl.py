# A Python prompt beside the running servers: a board gives its REPL only after main.py
# ends, this one answers while every server keeps serving. `await expr` works, so
# `await c.call("get")` can be typed at it. Ctrl-C still stops main.py, as on any board.
# A line that starts with RS (0x1E) is a console command from the host (`outstack
# console`): it is not echoed, and its answer comes back as RS JSON US, CR LF. A command
# "@TAG words" is answered RS "@TAG " JSON US, so a late answer is never taken for another's.
# The USB port is a hostile link: the prompt reads bytes, not text, into a preallocated
# line of _LINE bytes; nothing typed (binary noise, endless lines, a command that runs out
# of memory) ends it.
import sys
import select
import asyncio
from micropython import const

PROMPT = ">>> "
_RS = "\x1e"
_US = "\x1f"
_LINE = const(1024)  # the longest line taken, in bytes; a longer one is refused whole
_CHUNK = const(64)  # bytes read from the port at once
_TAG = const(17)  # "@" and up to 16 characters of a console command's tag


class Line:
    # The line being typed: a fixed buffer, so no byte typed allocates.
    def __init__(self, size=_LINE):
        self.buf = bytearray(size)
        self.n = 0
        self.echoed = 0  # buf[:echoed] is on the user's screen
        self.host = False  # this line is a console command
        self.over = False  # it ran past the buffer: it will be refused

    def reset(self, host=False):
        self.n = self.echoed = 0
        self.host = host
        self.over = False

    def add(self, c):
        if self.n < len(self.buf):
            self.buf[self.n] = c
            self.n += 1
        else:
            self.over = True

    def rubout(self, out):
        if self.n and not self.host:
            self.echo(out)
            self.n -= 1
            self.echoed = self.n
            out.write("\b \b")

    def echo(self, out):
        if self.host or self.over or self.echoed >= self.n:
            return
        _raw(out).write(memoryview(self.buf)[self.echoed:self.n])
        self.echoed = self.n

    def text(self):
        # The line as text, or None with why it is refused.
        if self.over:
            return None, "line longer than %d bytes: ignored" % len(self.buf)
        try:
            return bytes(self.buf[:self.n]).decode(), None
        except UnicodeError:
            return None, "line is not UTF-8 text: ignored"


def _raw(out):
    return getattr(out, "buffer", out)


async def serve(g):
    # A blocking read of n bytes waits for all n, so one byte is awaited and what else has
    # already arrived is taken a byte at a time, up to _CHUNK before yielding again.
    stdin = sys.stdin.buffer  # bytes: no byte typed can fail a read
    reader = asyncio.StreamReader(stdin)
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    one = bytearray(1)
    out = sys.stdout
    line = Line()
    out.write("\n" + PROMPT)
    while True:
        if not await reader.readinto(one):
            return  # nobody at the other end
        k = 0
        while True:
            c = one[0]
            if c == 0x1E:
                line.echo(out)
                line.reset(True)
            elif c == 13 or c == 10:
                line.echo(out)
                await _end(line, g, out)
            elif c == 0x7F or c == 8:
                line.rubout(out)
            elif c >= 32:
                line.add(c)
            k += 1
            if k == _CHUNK or not _ready(poll):
                break
            if not stdin.readinto(one):
                return
        line.echo(out)


def _ready(poll):
    for _ in poll.ipoll(0):
        return True
    return False


async def _end(line, g, out):
    # One line is complete: run it, whatever it does, then the prompt goes on.
    host = line.host
    text, why = line.text()
    line.reset()
    tag = _RS
    if host and text and text[0] == "@":  # only bytes >= 32 were taken: it cannot end the answer
        tag, _, text = text.partition(" ")
        tag = _RS + tag[:_TAG] + " "
    try:
        if host:
            await _console(g, tag, text, why, out)
            return
        out.write("\n")
        if why:
            print("outstack: " + why)
        elif text.strip():
            await run(text, g)
    except Exception as e:  # MemoryError included: report it, keep the prompt
        _report(e, out, host, tag)
    if not host:
        out.write(PROMPT)


def _report(e, out, host, head):
    try:
        if host:
            out.write(head + '{"error": "the board failed to answer: %s"}' % type(e).__name__
                      + _US + "\r\n")
        else:
            sys.print_exception(e)
    except Exception:
        pass  # nothing left to say it with: the prompt still goes on


async def _console(g, head, line, why, out):
    system = g.get("system")
    if why:
        import json

        said = (json.dumps({"error": why}),)
    elif system is None:
        said = ('{"error": "no system"}',)
    else:
        from outstack.debug.console import answer

        said = await answer(system, line)
    out.write(head)
    raw = getattr(out, "buffer", None)
    for piece in said:  # no yield in here: another task's print would land inside the answer
        if isinstance(piece, str):
            out.write(piece)
        elif raw is not None:
            raw.write(piece)
        else:
            out.write(piece.decode())
    out.write(_US + "\r\n")


async def run(line, g):
    try:
        if line.startswith("await "):
            exec("async def _live():\n return " + line, g)
            value = await g["_live"]()
            if value is not None:
                print(repr(value))
        else:
            exec(compile(line, "<live>", "single"), g)
    except Exception as e:  # a typo must not stop the servers
        sys.print_exception(e)
