"""A local MQTT broker: mosquitto on the loopback only, with a config of our own."""

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import CliError

INSTALL = "apt-get update && apt-get install -y mosquitto mosquitto-clients"
MAX_PACKET = 65536  # bytes: a board's packet buffer is far smaller; nothing needs more


def mosquitto() -> str:
    found = shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()), None)
    if not found:
        raise CliError(f"mosquitto is not installed: {INSTALL}")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """mosquitto on 127.0.0.1:port (a free one when port is 0) until stop()."""

    def __init__(self, port: int = 0, folder: Path | None = None):
        self.port = port or free_port()
        self.dir = Path(folder or tempfile.mkdtemp(prefix="outstack-broker-"))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> "Broker":
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"max_packet_size {MAX_PACKET}\nmax_connections -1\nmax_queued_messages 4000\n"
            "log_dest stderr\n")
        self.log = self.dir / "mosquitto.log"
        with open(self.log, "wb") as log:  # mosquitto run as root drops to its own user
            self.proc = subprocess.Popen([mosquitto(), "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        end = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                err = self.log.read_text(errors="replace").strip()
                raise CliError(f"mosquitto did not start on port {self.port}: {err or 'exited'}")
            if time.monotonic() > end:
                self.stop()
                raise CliError(f"mosquitto did not listen on port {self.port} within {timeout} s")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
