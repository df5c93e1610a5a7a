"""What the fleet tests share: a real mosquitto with a swarm of virtual boards running the
demo's firmware and the fleet server, a host-side view of them, the CLI on that state, and
signed packages of the demo's sensor."""

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from outstack.fleet import sim as S
from outstack.fleet.broker import Broker, INSTALL
from outstack.fleet.view import Fleet
from outstack.paths import ROOT
from tests.conftest import DEMO, outstack

KEY = str(ROOT / "keys" / "ota-key.pem")
# Typed at a board's prompt: the demo sensor's next sample raises ZeroDivisionError, once.
CRASH_ONCE = ("exec('from outstack import hal\\nf = hal.adc_read\\ndef g():\\n hal.adc_read = f\\n"
              " return 1 // 0\\nhal.adc_read = g')")  # the sensor's next sample raises, once
SENSOR = (DEMO / "app" / "sensor.py").read_text()


def broker_why() -> str | None:
    """Why no broker can run here (and how to get one), or None."""
    return None if shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto") \
        else INSTALL


class Swarm(NamedTuple):
    broker: Broker
    fleet: Fleet  # the host's view: births, heartbeats, results as they arrive
    folder: Path  # the boards' images, the broker's files and fleet.db
    boards: S.Swarm


@contextmanager
def swarm(n: int, folder: Path, **settings):
    """A broker and `n` boards, every one online: the fleet server beats every 500 ms, checks
    an update's health for 1 s, and the sensor samples every 200 ms; `settings` add to the
    fleet server's."""
    pub = json.loads((ROOT / "keys" / "ota-pub.json").read_text())
    with Broker(folder=folder / "broker") as broker, Fleet(broker.port) as fleet:
        cfg = S.fleet_config(broker.port, [pub], **{"period_ms": 500, "health_ms": 1000,
                                                     **settings},
                             base={"servers": {"sensor": {"period_ms": 200}}})
        with S.Swarm(n, folder, S.template(DEMO, folder, cfg)) as boards:
            fleet.wait(lambda: sum(b.online for b in fleet.boards.values()) == n, 300,
                       "every board online")
            yield Swarm(broker, fleet, folder, boards)


def fleet_cmd(sw: Swarm, *args, timeout=600):
    """`outstack fleet ARGS` on the swarm's state file (and its broker and key where the
    command talks to boards)."""
    return outstack("fleet", *args, "--db", str(sw.folder / "fleet.db"),
                    *(["--broker", f"127.0.0.1:{sw.broker.port}", "--key", KEY]
                      if args[0] not in ("status", "halt") else []), timeout=timeout)


def package(tmp_path: Path, version: str, seq: int, extra: str = "", signed=True) -> str:
    """The demo's sensor as version `version` (plus `extra` source), packed as update `seq`
    for the unix board, signed with the project's release key unless told not to."""
    src = tmp_path / f"sensor-{version}.py"
    src.write_text(f'__version__ = "{version}"\n' + SENSOR + extra)
    out = tmp_path / f"sensor-{version}-{seq}.pkg"
    sign = ["--key", KEY] if signed else ["--unsigned"]
    r = outstack("ota", "pack", f"{src}=app/sensor.py", *sign, "--board", "unix",
                 "--seq", str(seq), "--out", str(out))
    assert r.returncode == 0, r.stderr
    return str(out)
