# A Python prompt beside the running servers: a board gives its REPL only after main.py
# ends, this one answers while every server keeps serving. `await expr` works, so
# `await c.call("get")` can be typed at it. Ctrl-C still stops main.py, as on any board.
import sys
import asyncio

PROMPT = ">>> "


async def serve(g):
    reader = asyncio.StreamReader(sys.stdin)
    out = sys.stdout
    line = ""
    out.write("\n" + PROMPT)
    while True:
        got = await reader.read(1)
        if not got:
            return  # nobody at the other end
        c = got.decode() if isinstance(got, bytes) else str(got)  # stdin is text on most ports
        if c == "\r" or c == "\n":
            out.write("\n")
            if line.strip():
                await run(line, g)
            line = ""
            out.write(PROMPT)
        elif c == "\x7f" or c == "\x08":
            if line:
                line = line[:-1]
                out.write("\b \b")
        elif c >= " ":
            line += c
            out.write(c)


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
