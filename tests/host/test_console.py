"""The remote console, `outstack top` and the leak scenario, against running virtual boards
(tests/host/fw_debug: a ticker casting to a sink, a leaking server, the console server on
UART1 and TCP). Every command goes through the real CLI over real ptys and sockets."""

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import number, one_line_error, outstack, typed

FW = Path(__file__).parent / "fw_debug"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp_path, **servers):
    cfg = {"servers": {"sink": {}, "ticker": {}, "console": {}, **servers}}
    return {"/config.json": json.dumps(cfg)}


KEYS: dict = {}


def keys(tmp_path_factory=None):
    """A console key pair made once (ota keygen): {"dir": Path, "pub": the board's entry}."""
    if not KEYS:
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="console-keys-"))
        out = outstack("ota", "keygen", "--out", str(d))
        assert out.returncode == 0, out.stderr
        KEYS.update(dir=d, pem=str(d / "ota-key.pem"),
                    pub=json.loads((d / "ota-pub.json").read_text()))
    return KEYS


def console(port, *words, timeout=60, key=True):
    """The console CLI; signs (--key) what the board wants signed unless key=False."""
    extra = ("--key", keys()["pem"]) if key else ()
    # key=False: outside any project too, so the CLI finds no project key to sign with
    return outstack("console", "--port", port, *extra, *words, timeout=timeout,
                    **({} if key else {"cwd": "/"}))


def data(port, *words):
    out = console(port, "--json", *words)
    assert out.returncode == 0, (out.stdout, out.stderr)
    return json.loads(out.stdout)


def eventually(get, ok, timeout=10.0):
    """get() until ok(value) holds (the board works at its own pace); the last value."""
    end = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value) or time.monotonic() > end:
            return value
        time.sleep(0.1)


def rows(port):
    return {r["name"]: r for r in data(port, "servers")["servers"]}


@pytest.fixture
def board(make_board, tmp_path):
    tcp = free_port()
    vb = make_board(firmware=FW, files=config(tmp_path, console={
        "uart": True, "tcp_port": tcp, "console_keys": [keys()["pub"]]}))
    vb.tcp = tcp
    time.sleep(1.0)  # the ticker has ticked
    return vb


def test_every_console_command_over_the_usb_repl(board):
    port = board.usb_port
    table = console(port, "servers")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split()[:4] == ["NAME", "STATE", "PRI", "RESTARTS"]
    r = rows(port)
    assert set(r) == {"sink", "ticker", "console"}
    assert r["ticker"]["state"] == "running" and r["ticker"]["in"] > 10
    assert r["ticker"]["out"] == r["ticker"]["in"]  # one cast to the sink per tick
    assert r["sink"]["in"] >= r["ticker"]["out"] - r["sink"]["size"] and r["sink"]["high"] >= 1
    assert r["ticker"]["max_us"] > 0 and r["ticker"]["mem"] > 0

    info = console(port, "info", "ticker").stdout
    assert "ticker: running" in info and "grants      sink" in info and "depends     sink" in info

    log = data(port, "log", "ticker")
    assert log["backend"] == "logging"  # micropython-lib's logging, from the firmware's requirements
    assert [t for _, _, t in log["records"]] == ["ticker up, every 20 ms"]
    assert console(port, "level", "ticker", "DEBUG").stdout.strip() == "ticker: log level DEBUG"
    texts = eventually(lambda: [t for _, _, t in data(port, "log", "ticker", "5")["records"]],
                       lambda ts: len(ts) == 5 and ts[0].startswith("tick "))
    assert len(texts) == 5 and all(t.startswith("tick ") for t in texts)  # DEBUG now shows
    assert "DEBUG" in console(port, "log", "ticker", "2").stdout

    assert "tracing on" in console(port, "trace", "ticker", "on").stdout
    traced = eventually(lambda: data(port, "trace"), lambda d: len(d["trace"]) >= 5)
    assert traced["traced"] == ["ticker"]
    assert {s for _, s, m in traced["trace"]} == {"ticker"} and len(traced["trace"]) >= 5
    assert "ticker" in console(port, "trace").stdout
    console(port, "trace", "ticker", "off")

    assert console(port, "record", "ticker", "32").stdout.strip() == \
        "ticker: recording its last 32 messages"
    graph = console(port, "graph").stdout
    assert "supervisor top (one_for_one" in graph
    assert "ticker [permanent]  needs sink; sends to sink" in graph

    before = rows(port)["ticker"]["restarts"]
    assert console(port, "restart", "ticker").stdout.strip() == \
        f"ticker: restarted, running (restarts {before + 1})"
    assert rows(port)["ticker"]["restarts"] == before + 1

    assert "slow armed" in console(port, "fault", "ticker", "slow", "40").stdout
    r = eventually(lambda: rows(port)["ticker"], lambda r: r["over"] >= 1)
    assert r["max_us"] >= 40000 and r["over"] >= 1 and r["fault"] == "slow"
    assert "no fault armed" in console(port, "fault", "ticker", "off").stdout
    m0 = rows(port)["sink"]["mem"]
    armed = console(port, "fault", "sink", "leak", "2000")
    assert "leak armed" in armed.stdout, (armed.stdout, armed.stderr)
    grown = eventually(lambda: rows(port)["sink"], lambda r: r["mem"] >= m0 + 8000, timeout=60)
    assert grown["mem"] >= m0 + 8000, (m0, grown, rows(port)["ticker"])
    assert "crashed (injected)" in console(port, "fault", "sink", "crash").stdout
    # restarted (on a slow machine the leak may have run the heap out first: a second restart)
    r = eventually(lambda: rows(port), lambda r: r["sink"]["restarts"] >= 1
                   and r["sink"]["state"] == "running")
    assert r["sink"]["restarts"] >= 1 and r["sink"]["state"] == "running"
    assert r["sink"]["mem"] < m0 + 1000  # the leak went with the crashed server
    crashes = console(port, "crashes").stdout
    assert "server sink: last error InjectedFault: fault injected from the console" in crashes
    assert "heap:" in console(port, "mem").stdout
    assert "restart NAME" in console(port, "help").stdout
    # the live prompt still works, and the servers kept answering throughout
    assert number(board, "await call('sink', 'total')") > 0
    assert "'name': 'sink'" in typed(board, "await console('info sink')")
    start = len(board.output)
    assert typed(board, "await console('info nope')").startswith("Traceback")
    said = eventually(lambda: bytes(board.output[start:]), lambda o: b"no server 'nope'" in o)
    assert b"OutstackError: no server 'nope'" in said


def test_the_console_over_uart1_and_tcp(board):
    assert console(board.uart_port, "--via", "link", "graph").returncode == 0
    one_line_error(console(board.uart_port, "--via", "usb", "graph"), "no board console answered")
    for port in (board.uart_port, f"127.0.0.1:{board.tcp}"):
        r = rows(port)
        assert r["ticker"]["state"] == "running", port
        assert "ticker [permanent]" in console(port, "graph").stdout
        one_line_error(console(port, "level", "sink", "WARNING", key=False), "signature required")
        assert data(port, "level", "sink", "WARNING")["level"] == 30  # signed (--key)
        out = console(port, "info", "nope")
        one_line_error(out, "info: no server 'nope'", "sink, ticker")
    assert rows(board.usb_port)["sink"]["level"] == 30  # all three reach the same system
    from outstack.errors import CliError
    from outstack.ota.transfer import Sender, TcpLine

    line = TcpLine("127.0.0.1", board.tcp)
    try:
        Sender(line).push(b"not for this link")
        raise AssertionError("the console link took an update")
    except CliError as e:
        assert "carries the console only" in str(e)
    finally:
        line.close()


def test_interactive_console_and_top(board):
    out = outstack("console", "--port", board.usb_port,
                   input="servers\nbogus\n\nlog nope\ngraph\nquit\n")
    assert out.returncode == 0, out.stderr
    assert "error: unknown command 'bogus'" in out.stdout
    assert "error: no server 'nope'" in out.stdout
    assert "NAME" in out.stdout and "supervisor top" in out.stdout
    top = outstack("top", "--port", board.usb_port, "--count", "3", "--interval", "0.3")
    assert top.returncode == 0, top.stderr
    tables = [t for t in top.stdout.split("\n\n") if t.strip()]
    assert len(tables) == 3 and all("ticker" in t for t in tables)
    dispatched = [int(t.split("dispatched ")[1].split()[0]) for t in tables]
    assert dispatched[0] < dispatched[1] < dispatched[2]  # live: it refreshes


def test_bad_input_gets_one_clear_line_and_the_board_keeps_running(board, tmp_path):
    port = board.usb_port
    one_line_error(console(port, "explode"), "unknown command 'explode'", "servers")
    one_line_error(console(port, "restart", "nope"), "no server 'nope'")
    one_line_error(console(port, "fault", "ticker", "explode"), "unknown fault 'explode'")
    one_line_error(console(port, "fault", "ticker", "hang"), "no watchdog is armed")
    one_line_error(console(port, "trace", "ticker", "sideways"), "say on or off")
    one_line_error(console(port, "record", "ticker", "lots"), "'lots' is not a number")
    one_line_error(console(port, "/dev/nonexistent-port"[0:0] or "log"), "wrong arguments")
    one_line_error(console("/dev/nonexistent-port", "servers"), "no board at /dev/nonexistent-port")
    one_line_error(console(f"127.0.0.1:{free_port()}", "servers"), "cannot reach 127.0.0.1")
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        one_line_error(console(os.ttyname(slave), "servers"), "no board console answered")
    finally:
        os.close(master)
        os.close(slave)
    r = rows(port)
    assert r["ticker"]["state"] == "running" and r["ticker"]["restarts"] == 0
    assert number(board, "await call('sink', 'total')") > 0


def test_a_hang_ends_in_a_watchdog_reset_with_the_server_named(make_board, tmp_path):
    cfg = {"servers": {"sink": {}, "ticker": {}, "console": {}}, "watchdog_ms": 1000}
    vb = make_board(firmware=FW, files={"/config.json": json.dumps(cfg)})
    time.sleep(0.5)
    assert data(vb.usb_port, "record", "ticker", "8")["record"] == 8
    mark = vb.mark()
    assert "hang armed" in console(vb.usb_port, "fault", "ticker", "hang").stdout
    vb.wait_for("wdt-reset", since=mark, timeout=10)
    vb.wait_for("booted", since=mark, timeout=10)
    time.sleep(0.5)
    crashes = data(vb.usb_port, "crashes")["board"]
    assert crashes["server"] == "ticker" and crashes["cause"] == "WDT", crashes
    shown = console(vb.usb_port, "crashes").stdout  # with what it was handling when it hung
    assert "last messages it received" in shown and "cast  'tick' None" in shown, shown


def test_the_seed_leak_shows_in_the_console(make_board, tmp_path):
    # A server that keeps what it should let go: its memory grows, mem_limit crashes it
    # (before the heap runs out for everyone), its restarts count up, the trace shows it working.
    # It leaks 256 bytes every 100 ms: a life of about 6 s. The host samples as fast as the
    # console answers (slower on a busy machine), so it samples on until it has seen both.
    vb = make_board(firmware=FW, files=config(tmp_path, leaky={"enabled": True, "ms": 100}))
    port = vb.usb_port
    assert "tracing on" in console(port, "trace", "leaky", "on").stdout
    samples: list = []
    end = time.monotonic() + 240
    while time.monotonic() < end:
        r = rows(port)["leaky"]
        samples.append((r["restarts"], r["mem"]))
        grew = [(a, b) for a, b in zip(samples, samples[1:]) if a[0] == b[0] and b[1] > a[1]]
        if r["restarts"] >= 2 and len(grew) >= 3:
            break
        time.sleep(0.4)
    grew = [(a, b) for a, b in zip(samples, samples[1:]) if a[0] == b[0] and b[1] > a[1]]
    assert len(grew) >= 3, samples  # memory rising within one life of the server
    assert samples[-1][0] >= 2, samples  # and the restarts rising
    assert max(m for _, m in samples) > 8000
    table = console(port, "servers").stdout
    assert "last error MemoryError: 'leaky' holds about" in table and "mem_limit of 16384" in table
    traced = data(port, "trace")["trace"]
    assert [m for _, s, m in traced if s == "leaky"][-3:] == ["work"] * 3


def test_logs_fall_back_when_logging_is_not_installed(make_board, tmp_path):
    fw = tmp_path / "fw"
    import shutil

    shutil.copytree(FW, fw)
    (fw / "requirements.txt").write_text("")  # no micropython-lib logging on this board
    vb = make_board(firmware=fw, files=config(tmp_path))
    log = data(vb.usb_port, "log", "ticker")
    assert log["backend"] == "outstack.minilog"
    assert [t for _, _, t in log["records"]] == ["ticker up, every 20 ms"]


def test_a_board_without_the_framework_is_told_apart_and_left_running(make_board):
    from tests.conftest import mpremote

    vb = make_board(files={"/main.py": "print('plain board')\n"})  # main.py ends: a plain REPL
    one_line_error(console(vb.usb_port, "servers"), "no board console answered")
    assert mpremote(vb.usb_port, "exec", "print(6 * 7)").stdout.strip() == "42"  # unharmed
    assert outstack("top", "--port", vb.usb_port, "--interval", "0").returncode == 2


def test_the_sim_terminal_hides_console_answers_whatever_the_chunking():
    from outstack.commands.sim import HideConsole

    stream = b'status 1\r\n>>> \x1e{"ok": [1, 2]}\x1f\r\nstatus 2\r\n>>> \x1e{"error": "x"}\x1f\r\nok'
    for size in (1, 2, 3, 7, len(stream)):
        hide = HideConsole()
        shown = b"".join(hide(stream[i:i + size]) for i in range(0, len(stream), size))
        assert shown == b"status 1\r\n>>> status 2\r\n>>> ok", (size, shown)
