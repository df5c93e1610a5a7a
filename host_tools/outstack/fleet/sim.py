"""Many virtual boards for a fleet: one flash image built from the project's firmware with
the fleet server switched on, copied once per board (each copy is a board of its own: its
unique id comes from its image's path), each booted as a VirtualBoard."""

import json
import resource
import shutil
from pathlib import Path

from .. import image
from ..stage import stage
from ..sim import VirtualBoard

QUIET = ("processing", "storage", "status", "uplink")  # the demo's other servers: off


def fleet_config(port: int, keys: list[dict], host: str = "127.0.0.1", period_ms: int = 5000,
                 base: dict | None = None, **fleet) -> dict:
    """A device config with the fleet server on (Wi-Fi of the virtual access point, this
    broker, these trusted keys); the OTA server keeps UART1 only (TCP ports would clash)."""
    cfg = json.loads(json.dumps(base or {}))
    servers = cfg.setdefault("servers", {})
    for name in QUIET:
        servers.setdefault(name, {"enabled": False})
    servers.setdefault("ota", {}).update({"tcp_port": 0, "keys": keys})
    servers["fleet"] = {"enabled": True, "ssid": "outstack", "key": "outstack-key",
                        "host": host, "port": port, "period_ms": period_ms, "keys": keys,
                        **fleet}
    return cfg


def template(firmware: Path, folder: Path, cfg: dict, board: str = "unix") -> Path:
    """One image of the project's firmware (modules compiled, as deploy does) with `cfg`."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "config.json"
    conf.write_text(json.dumps(cfg))
    files = image.layout(board, firmware)
    if not any(dest == "/lib/umqtt/simple.py" for _, dest in files):
        from .. import mlib

        files += mlib.files(["umqtt.simple"])  # the fleet server's MQTT client
    files = [(str(p), d) for p, d in stage(files, board, out=folder / "mpy")]
    files = [f for f in files if f[1] != "/config.json"] + [(str(conf), "/config.json")]
    out = folder / "template.img"
    image.build(out, board, files)
    return out


def raise_fd_limit(boards: int) -> None:
    # A virtual board holds about a dozen descriptors (two ptys, pipes, sockets).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 64 + 16 * boards))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Swarm:
    """N virtual boards on copies of `template` in `folder` (board-000.img, ...)."""

    def __init__(self, n: int, folder: Path, template_image: Path, board: str = "unix",
                 heap: int | None = None):
        self.n, self.folder, self.template = n, Path(folder), Path(template_image)
        self.board, self.heap = board, heap
        self.boards: list[VirtualBoard] = []

    def start(self, fresh: bool = True) -> "Swarm":
        raise_fd_limit(self.n)
        for i in range(self.n):
            img = self.folder / f"board-{i:03d}.img"
            if fresh or not img.exists():
                shutil.copyfile(self.template, img)
            vb = VirtualBoard(img, self.board, heap=self.heap)
            self.boards.append(vb)
            vb.start()
        return self

    def stop(self) -> None:
        for vb in self.boards:
            vb.stop()
        self.boards = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
