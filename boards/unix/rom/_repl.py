# The board's REPL on the USB port: the friendly REPL a person types into, and the raw
# REPL (with raw-paste flow control) that mpremote drives, byte for byte as a board does.
import io
import struct
import sys
import _hw
import micropython
from micropython import const

_CTRL_C = const(3)
_WINDOW = 256  # raw-paste window: how many bytes the host may send before we ask for more
_BUF = bytearray(1)
_out = sys.stdout


def _getc():
    # Ctrl-C arrives as SIGINT while the interrupt char is on (the host turns the byte into
    # an interrupt, as a board's UART interrupt does), so a KeyboardInterrupt here means the
    # user pressed Ctrl-C; with it off (kbd_intr(-1)) the byte itself comes, as on a board.
    if not sys.stdin.buffer.readinto(_BUF):
        raise SystemExit  # the host closed the port: the board is switched off
    if _BUF[0] == _CTRL_C:
        raise KeyboardInterrupt
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
    # True when the code raised SystemExit: a board's REPL then soft-resets (its files end).
    try:
        if not isinstance(src, str):
            src = bytes(src).decode()  # what a board's compiler gets: bytes, maybe not text
        _exec(compile(src, name, mode), g)
    except SystemExit:
        return True
    except BaseException as e:  # the REPL outlives what it runs
        print_exception(e)
    return False


def _exec(code, g):
    # A board turns Ctrl-C back on for each run and off after it, whatever the code did with
    # kbd_intr; here it stays on between runs: the host cooks our output only while it is on.
    micropython.kbd_intr(_CTRL_C)
    try:
        exec(code, g)
    finally:
        micropython.kbd_intr(_CTRL_C)


def run_file(name, g):
    try:
        with open(name) as f:
            src = f.read()
    except OSError:
        return
    _run(src, g, name, "exec")


def start(mode):
    """Run boot.py (and main.py in the friendly REPL), then the REPL, in the globals of
    `__main__` as a board does (unittest.main() looks for its tests there)."""
    import __main__

    g = __main__.__dict__
    g.clear()  # what ran the ROM leaves nothing behind: a board's __main__ starts empty
    g["__name__"] = "__main__"
    try:
        _hw.tell("booted")  # from here a Ctrl-C is an interrupt (the host held it till now)
        run_file("boot.py", g)
        if mode == "friendly":
            run_file("main.py", g)
    except KeyboardInterrupt:
        pass  # a Ctrl-C that landed between the two files, or just after: on to the REPL
    run(mode, g)


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
            try:
                _escape(line, history)
            except KeyboardInterrupt:
                return None
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
                if _run(src + "\n", g, "<stdin>", "single"):
                    soft_reboot("friendly")


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
            if _run(buf, g, "<stdin>", "exec"):
                soft_reboot("friendly")
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
        _exec(compile(src, "<stdin>", "exec"), g)
        _out.write("\x04")
    except SystemExit:
        _out.write("\x04\x04")
        soft_reboot("raw")  # as a board's raw REPL does: `raise SystemExit` ends the session
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
        try:
            c = _getc()
        except KeyboardInterrupt as e:
            _out.write("\x04\x04")  # as a board: end of input, then the interrupt as the error
            print_exception(e)
            _out.write("\x04")
            return
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
