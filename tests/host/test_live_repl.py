"""The prompt beside the servers: typed lines run while the servers keep serving."""

import time

from tests.conftest import COUNTER_MAIN, mpremote, number, one_line_error, outstack, typed, wait_text

MAIN = COUNTER_MAIN + """
System({"counter": {"factory": Counter}}, config_path="/none.json").run_forever()
"""


def test_prompt_answers_while_servers_run(make_board):
    vb = make_board(files={"/main.py": MAIN})
    end = time.monotonic() + 5
    while b">>> " not in vb.output and time.monotonic() < end:
        time.sleep(0.02)
    assert typed(vb, "6 * 7") == "42"
    n1 = number(vb, "await call('counter', 'get')")
    time.sleep(0.3)
    n2 = number(vb, "await call('counter', 'get')")
    assert n2 >= n1 + 5, (n1, n2)  # the ticker kept running between the two
    assert typed(vb, "1/0") == "Traceback (most recent call last):"
    assert "ZeroDivisionError: divide by zero" in vb.output.decode(errors="replace")
    assert typed(vb, "40 + 2") == "42"  # the prompt survived the error


def _booted(vb):
    wait_text(vb, ">>> ")


def test_bytes_that_are_not_text_do_not_end_the_prompt(make_board):
    vb = make_board(files={"/main.py": MAIN})
    _booted(vb)
    vb.type(b"\xff")
    vb.type(b"\x80\r")
    assert typed(vb, "40 + 2") == "42"
    start = len(vb.output)
    vb.type(b"'\xc3\xa9' + \xff'x'\r")  # text, then one stray byte, in one line
    wait_text(vb, "line is not UTF-8 text: ignored", start)
    assert typed(vb, "len('\u00e9')") == "1"  # UTF-8 that is text is taken whole
    assert number(vb, "await call('counter', 'get')") > 0  # the servers never stopped


def test_control_characters_are_not_typing(make_board):
    vb = make_board(files={"/main.py": MAIN})
    _booted(vb)
    vb.type(bytes(c for c in range(32) if c not in (3, 10, 13, 0x1E)) + b"\x1b[A\x7f\x7f\r")
    assert typed(vb, "6 * 7") == "42"


def test_a_line_of_any_length_gets_a_clear_error(make_board):
    vb = make_board(files={"/main.py": MAIN})
    _booted(vb)
    for size in (16 * 1024, 32 * 1024, 200 * 1024):
        start = len(vb.output)
        vb.type(b"1" * size + b"\r")
        wait_text(vb, "outstack: line longer than 1024 bytes: ignored", start)
        assert typed(vb, "40 + 2") == "42", size
    start = len(vb.output)
    vb.type(b"\x1e" + b"x" * 5000 + b"\r")  # a console command too long: its answer says so
    wait_text(vb, '\x1e{"error": "line longer than 1024 bytes: ignored"}\x1f', start)
    assert typed(vb, "1 + 1") == "2"


def test_a_command_that_runs_out_of_memory_is_reported(make_board):
    vb = make_board(files={"/main.py": MAIN})
    _booted(vb)
    start = len(vb.output)
    vb.type(b"x = bytearray(1 << 30)\r")
    wait_text(vb, "MemoryError", start)
    assert typed(vb, "40 + 2") == "42"
    assert number(vb, "await call('counter', 'get')") > 0


def test_console_says_main_is_stopped_and_the_plain_repl_takes_any_bytes(make_board):
    vb = make_board(files={"/main.py": MAIN})
    _booted(vb)
    mpremote(vb.usb_port, "exec", "print('main.py stops here')")
    start, mark = len(vb.output), vb.mark()
    out = outstack("console", "--port", vb.usb_port, "servers")
    one_line_error(out, "main.py is stopped", "soft-reset")
    assert b"\x1e" not in vb.output[start:].replace(b"\x1e\r", b"")  # only the empty probe
    # A board's REPL takes any bytes: lines, pastes and raw code that are not UTF-8.
    vb.type(b"\xff")
    vb.type(b"\x80\r")
    vb.type(b"'\xc3\xa9' + \xfe\r")
    vb.type(b"\x05\xff\x80\x04")  # paste mode, then run it
    vb.type(b"\x1e" + bytes(range(0x80, 0x100)) + b"\r1 + 1\r")
    wait_text(vb, "1 + 1\r\n2\r\n", start)
    assert b"SyntaxError: invalid UTF-8 in the line" in vb.output[start:]  # said, not died
    assert not [e for e in vb.events[mark:] if e.kind == "booted"]  # no reset either
    assert mpremote(vb.usb_port, "exec", "print(6 * 7)").stdout.strip() == "42"
    vb.type(b"\r\x04")  # Ctrl-D at the friendly prompt: a soft reset that runs main.py
    end = time.monotonic() + 30
    while True:  # main.py runs again, and with it the live prompt and its console
        out = outstack("console", "--port", vb.usb_port, "servers")
        if out.returncode == 0 or time.monotonic() > end:
            break
    assert out.returncode == 0 and "counter" in out.stdout, out.stderr
