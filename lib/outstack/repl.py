# A Python prompt beside the running servers: a board gives its REPL only after main.py
# ends, this one answers while every server keeps serving. `await expr` works, so
# `await c.call("get")` can be typed at it. Ctrl-C still stops main.py, as on any board.
# A line that starts with RS (0x1E) is a console command from the host (`outstack
# console`): it is not echoed, and its answer comes back as RS JSON US, CR LF.
import sys
import asyncio

PROMPT = ">>> "
_RS = "\x1e"
_US = "\x1f"


async def serve(g):
    reader = asyncio.StreamReader(sys.stdin)
    out = sys.stdout
    line = ""
    host = False  # this line is a console command
    out.write("\n" + PROMPT)
    while True:
        got = await reader.read(1)
        if not got:
            return  # nobody at the other end
        try:
            c = got.decode() if isinstance(got, bytes) else str(got)  # text on most ports
        except UnicodeError:
            continue  # a stray byte of binary noise: not typing
        if c == _RS:
            line, host = "", True
        elif c == "\r" or c == "\n":
            if host:
                await _console(g, line, out)
                line, host = "", False
                continue
            out.write("\n")
            if line.strip():
                await run(line, g)
            line = ""
            out.write(PROMPT)
        elif c == "\x7f" or c == "\x08":
            if line and not host:
                line = line[:-1]
                out.write("\b \b")
        elif c >= " ":
            line += c
            if not host:
                out.write(c)


async def _console(g, line, out):
    from outstack.debug.console import answer

    system = g.get("system")
    said = await answer(system, line) if system is not None else ('{"error": "no system"}',)
    out.write(_RS)
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
