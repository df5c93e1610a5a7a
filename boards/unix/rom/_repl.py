# The board's REPL on the USB port: the friendly REPL a person types into, and the raw
# REPL (with raw-paste flow control) that mpremote drives, byte for byte as a board does.
import io
import struct
import sys
import _hw

_WINDOW = 256  # raw-paste window: how many bytes the host may send before we ask for more
_BUF = bytearray(1)
_out = sys.stdout


def _getc():
    # Ctrl-C arrives as SIGINT (the host turns the byte into an interrupt, as a board's
    # USB stack does), so a KeyboardInterrupt here means the user pressed Ctrl-C.
    if not sys.stdin.buffer.readinto(_BUF):
        raise SystemExit  # the host closed the port: the board is switched off
    return _BUF[0]


def banner():
    v = sys.implementation.version
    build, date = sys.version.split("MicroPython ")[1].split(" on ")
    _out.write("MicroPython v%d.%d.%d%s.%s on %s; Outstack virtual board (%s) with unix port\n"
               % (v[0], v[1], v[2], "-" + v[3] if len(v) > 3 and v[3] else "", build, date,
                  _hw.cfg["board"]))
    _out.write('Type "help()" for more information.\n')


def print_exception(e):
    # As a board prints it: without the frames of this ROM, which a board has in C.
    buf = io.StringIO()
    sys.print_exception(e, buf)
    for line in buf.getvalue().split("\n")[:-1]:
        if not (line.startswith('  File "') and "/rom/_" in line):
            _out.write(line + "\n")


def _run(src, g, name, mode):
    try:
        if not isinstance(src, str):
            src = bytes(src).decode()  # what a board's compiler gets: bytes, maybe not text
        exec(compile(src, name, mode), g)
    except BaseException as e:  # SystemExit too: the REPL outlives what it runs
        print_exception(e)


def soft_reboot(mode):
    _out.write("MPY: soft reboot\n")
    _hw.tell("soft " + mode)
    _hw.halt()


def _continues(src):
    if src.endswith(":") or src.endswith("\\"):
        return True
    depth = 0
    for c in src:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
    return depth > 0 or src.count('"""') % 2 == 1 or src.count("'''") % 2 == 1


def _readline(prompt, history):
    _out.write(prompt)
    line = bytearray()
    while True:
        try:
            c = _getc()
        except KeyboardInterrupt:
            return None
        if c == 13:
            _out.write("\n")
            try:
                return line.decode()
            except UnicodeError:
                _out.write("SyntaxError: invalid UTF-8 in the line\n")  # as a compiler says
                return ""
        if c in (1, 2, 4, 5) and not line:
            return c
        if c in (8, 127):
            if line:
                line.pop()
                _out.write("\b \b")
        elif c == 27:
            _escape(line, history)
        elif c >= 32 or c == 9:
            line.append(c)
            _out.write(chr(c))


def _escape(line, history):
    if _getc() != 91:
        return
    c = _getc()
    if c == 65 and history:  # up arrow: bring back the last line
        _out.write("\b \b" * len(line) + history[-1])
        line[:] = history[-1].encode()


def friendly(g):
    history = []
    while True:
        got = _readline(">>> ", history)
        if got is None:
            _out.write("\n")
        elif got == 4:
            soft_reboot("friendly")
        elif got == 1:
            _out.write("\n")
            return "raw"
        elif got == 2:
            _out.write("\n")
            banner()
        elif got == 5:
            _paste(g)
        elif isinstance(got, str) and got.strip():
            src = _more(got, history)
            if src:
                history.append(got)
                _run(src + "\n", g, "<stdin>", "single")


def _more(src, history):
    # A compound statement runs on to an empty line; open brackets run on until closed.
    block = src.rstrip().endswith(":")
    while block or _continues(src):
        got = _readline("... ", history)
        if not isinstance(got, str):
            _out.write("\n")
            return None
        if block and not got.strip():
            break
        src += "\n" + got
    return src


def _paste(g):
    _out.write("\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\n=== ")
    buf = bytearray()
    while True:
        try:
            c = _getc()
        except KeyboardInterrupt:
            _out.write("\n")
            return
        if c == 4:
            _out.write("\n")
            _run(buf, g, "<stdin>", "exec")
            return
        buf.append(c)
        _out.write(chr(c) if c != 13 else "\n=== ")


def raw(g):
    while True:
        _out.write(">")
        line = bytearray()
        while True:
            try:
                c = _getc()
            except KeyboardInterrupt:
                line = bytearray()
                continue
            if c == 1:
                if line == b"\x05A":
                    _raw_paste(g)
                else:
                    _out.write("raw REPL; CTRL-B to exit\n")
                break
            if c == 2:
                _out.write("\n")
                return "friendly"
            if c == 4:
                if not line:
                    soft_reboot("raw")
                _out.write("OK")
                _exec_raw(bytes(line), g)
                break
            line.append(c)


def _exec_raw(src, g):
    try:
        exec(compile(src, "<stdin>", "exec"), g)
        _out.write("\x04")
    except BaseException as e:
        _out.write("\x04")
        print_exception(e)
    _out.write("\x04")


def _raw_paste(g):
    _out.write("R\x01")
    sys.stdout.buffer.write(struct.pack("<H", _WINDOW))
    src = bytearray()
    room = _WINDOW
    while True:
        c = _getc()
        if c == 4:
            break
        src.append(c)
        room -= 1
        if room == 0:
            _out.write("\x01")
            room = _WINDOW
    _out.write("\x04")
    _exec_raw(bytes(src), g)


def run(mode, g):
    while True:
        _hw.mode = mode
        try:
            if mode == "raw":
                _out.write("raw REPL; CTRL-B to exit\n")
                mode = raw(g)
            else:
                banner()
                mode = friendly(g)
        except KeyboardInterrupt:
            # Ctrl-C between two prompts (say, a second one while a banner prints): a board
            # ignores it there; we start the prompt of the same mode again.
            _out.write("\n")
        except Exception as e:  # a board's REPL (in C) takes any bytes: so must this one
            print_exception(e)
