"""The demo firmware (firmware/) on a virtual board: it boots from /config.json, prints a
status line every few seconds with readings advancing, stores summaries on flash, sends
them to a TCP collector through the uplink, rides out a Wi-Fi outage with a bounded and
counted backlog, runs its defaults when the config is broken, and names the reason of a
crash-reset at the next boot."""

import json
import re
import socket
import threading
import time

from outstack import image

STATUS = re.compile(r"status: up (\d+) s \| sensor (\d+|-)(?: avg (\d+))?[^|]* \| stored (\d+|\?)"
                    r"(?: lines)? \| (uplink [^|]+?) \| (\d+) KB free")
FAST = {  # a summary every 100 ms, each stored at once, a status line twice a second
    "sensor": {"period_ms": 50},
    "processing": {"every": 2},
    "storage": {"batch": 2},
    "status": {"every_ms": 500},
    "uplink": {"enabled": False},
}


def config(**changes) -> str:
    servers = {name: dict(settings) for name, settings in FAST.items()}
    for name, settings in changes.items():
        servers[name] = settings
    return json.dumps({"servers": servers})


def text(vb) -> str:
    return vb.output.decode(errors="replace")


def statuses(vb) -> list:
    return STATUS.findall(text(vb))


def read_flash(vb, path) -> str:
    # image.read_file would let its LittleFS be collected while the file is open (a crash
    # in littlefs-python): hold the file system for as long as the read takes.
    fs = image.open_fs(vb.image, "unix")
    with fs.open(path, "rb") as f:
        return f.read().decode()


def wait_until(what, timeout=10.0, vb=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out; board said:\n{text(vb)[-1500:] if vb else ''}")


def two(items):
    return items if len(items) >= 2 else None


class Collector:
    """A TCP server on 127.0.0.1 that keeps every line it is sent."""

    def __init__(self):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.lines = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                for line in f:
                    self.lines.append(line.decode())

    def close(self):
        self.srv.close()


def test_boots_with_its_config_and_prints_status_lines_as_readings_advance(make_board):
    vb = make_board()  # firmware/config.json as shipped: a line every 3 s
    wait_until(lambda: len(statuses(vb)) >= 3, timeout=15, vb=vb)
    assert "Outstack Micro on unix, reset cause PWRON\r\n" in text(vb)
    assert "outstack: /config.json" not in text(vb) and "Traceback" not in text(vb), text(vb)
    lines = statuses(vb)
    ups = [int(s[0]) for s in lines]
    assert ups[0] >= 2 and ups[1] - ups[0] in (2, 3, 4) and ups[2] > ups[1], lines
    sensor = [s[1] for s in lines]
    assert sensor[0] != "-" and len(set(sensor)) == 3, lines  # a slow triangle wave: it moves
    assert all(s[4] == "uplink off" and int(s[5]) > 20 for s in lines), lines


def test_summaries_land_in_a_csv_file_on_flash(make_board):
    vb = make_board(files={"/config.json": config()})
    wait_until(lambda: any(s[3] not in ("0", "?") and int(s[3]) >= 6 for s in statuses(vb)), vb=vb)
    vb.cut_power()
    csv = read_flash(vb, "/data/readings.csv")
    head, *rows = csv.splitlines()
    assert head == "seq,ms,avg,min,max,missed"
    assert len(rows) >= 6 and len(rows) % 2 == 0, csv  # whole batches of 2 only
    rows = [[int(x) for x in row.split(",")] for row in rows]
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)), rows
    assert all(r[3] <= r[2] <= r[4] <= 65535 and r[5] == 0 for r in rows), rows
    assert all(60 <= b[1] - a[1] <= 160 for a, b in zip(rows, rows[1:])), rows  # one per 100 ms


def test_uplink_sends_each_summary_to_the_collector(make_board):
    col = Collector()
    try:
        vb = make_board(files={"/config.json": config(uplink={
            "ssid": "outstack", "key": "outstack-key", "port": col.port})})
        wait_until(lambda: len(col.lines) >= 10, vb=vb)
        seqs = [int(line.split(",")[0]) for line in col.lines]
        assert seqs == list(range(1, len(seqs) + 1)), col.lines  # none lost, none twice
        assert "uplink: sending to 127.0.0.1:%d" % col.port in text(vb)
        wait_until(lambda: re.search(r"uplink \d+ sent \|", text(vb)), timeout=3, vb=vb)
    finally:
        col.close()


def test_wifi_outage_keeps_a_bounded_counted_backlog_and_the_rest_runs(make_board):
    col = Collector()
    try:
        uplink = {"ssid": "outstack", "key": "outstack-key", "port": col.port, "backlog": 4,
                  "join_ms": 300, "retry_ms": 200}
        vb = make_board(files={"/config.json": config(uplink=uplink)}, start=False)
        vb.set_wifi(False)
        vb.start()
        vb.wait_for("booted")
        down = wait_until(lambda: two([s for s in statuses(vb) if "dropped" in s[4]]), vb=vb)
        drops = [int(re.fullmatch(r"uplink down 4 queued (\d+) dropped", s[4]).group(1))
                 for s in down]
        assert drops[1] > drops[0], down  # counted, and still counting
        assert "uplink: backlog full (4 lines): dropping the oldest" in text(vb)
        assert "uplink: Wi-Fi 'outstack' not joined" in text(vb)
        assert int(down[1][3]) > int(down[0][3]), down  # sampling and storage never noticed
        assert col.lines == []
        vb.set_wifi(True)
        wait_until(lambda: len(col.lines) >= 8, vb=vb)
        seqs = [int(line.split(",")[0]) for line in col.lines]
        assert seqs[0] > 4 and seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    finally:
        col.close()


def test_broken_config_is_reported_and_the_defaults_run(make_board):
    vb = make_board(files={"/config.json": "{bad"})
    wait_until(lambda: statuses(vb), timeout=6, vb=vb)
    said = re.findall(r"outstack: /config.json: [^\r\n]+", text(vb))
    assert len(said) == 1 and said[0].endswith("running the built-in defaults"), said
    assert statuses(vb)[0][4] == "uplink off"  # the defaults leave the uplink off


def test_a_setting_of_the_wrong_type_is_refused_at_boot_and_the_defaults_run(make_board):
    vb = make_board(files={"/config.json": config(sensor={"period_ms": "fast"})})
    said = wait_until(lambda: re.search(r"outstack: /config.json: 'sensor': setting 'period_ms' "
                                        r"must be int[^\r\n]*running the built-in defaults",
                                        text(vb)), vb=vb)
    assert said
    wait_until(lambda: text(vb).count("status:") >= 1, vb=vb)  # the defaults run
    assert not [e for e in vb.events if e.kind in ("reset", "wdt-reset")]
