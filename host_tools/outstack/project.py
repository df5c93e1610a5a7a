"""A user's project: a folder with an `outstack.toml`, the firmware (boot.py, main.py, the
app's servers, config.json, requirements.txt) and its keys. Every command takes the project
in the current folder (or the nearest one above it), or `--project DIR`. This repository's
demo is one such project.

    [project]
    name = "myapp"
    firmware = "firmware"      # the folder that becomes the board's root
    board = "unix"             # what `outstack sim` and `outstack image` play
    deploy_board = "rp2040"    # what `outstack deploy` compiles for

    [ota]
    key = "keys/ota-key.pem"           # the dev signing key (dev loop, console commands)
    trust = ["keys/ota-pub.json"]      # public keys given to the OTA server on every build
    server = "ota"                     # the OTA server's name in the server table

    [connect]                          # optional defaults for --port
    port = "/dev/ttyACM0"              # USB REPL (deploy, console, crashlog)
    link = "/dev/ttyUSB0"              # UART1 or HOST:PORT (ota push/status, dev)
"""

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import boards
from .errors import CliError

FILE = "outstack.toml"
SECTIONS = {"project": {"name", "firmware", "board", "deploy_board"},
            "ota": {"key", "trust", "server"},
            "connect": {"port", "link"},
            "fleet": {"token"}}  # the dashboard's token (outstack fleet serve)


@dataclass
class Project:
    root: Path
    name: str
    firmware: Path
    board: str = "unix"
    deploy_board: str = "rp2040"
    key: Path | None = None
    trust: list[Path] = field(default_factory=list)
    ota_server: str = "ota"
    port: str | None = None
    link: str | None = None

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def requirements(self) -> Path:
        return self.firmware / "requirements.txt"

    @property
    def config(self) -> Path:
        return self.firmware / "config.json"

    def trusted_keys(self) -> list[dict]:
        """The public keys the board's OTA server is given, as its config holds them."""
        out = []
        for path in self.trust:
            if not path.is_file():
                raise CliError(f"{self.shown(path)} (a trusted key of {FILE}) does not exist: "
                               f"make the dev key with `outstack ota keygen --out "
                               f"{self.shown(path.parent)}`")
            try:
                entry = json.loads(path.read_text())
                entries = entry["ota"]["keys"] if "ota" in entry else [entry]
            except (ValueError, KeyError, TypeError):
                raise CliError(f"{self.shown(path)} is not a public key written by "
                               f"`outstack ota keygen` (ota-pub.json)") from None
            out += [e for e in entries if e not in out]
        return out

    @staticmethod
    def shown(path: Path) -> str:
        return shown(path)


def shown(path: Path) -> str:
    """A path as the user knows it: relative to the current folder when it is inside it."""
    path = Path(path).resolve()
    here = Path.cwd()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def find(explicit: str | None = None, start: Path | None = None) -> Project:
    """The project named by --project, else $OUTSTACK_PROJECT, else the nearest folder at or
    above the current one that has an outstack.toml."""
    given = explicit or os.environ.get("OUTSTACK_PROJECT")
    if given:
        root = Path(given)
        if not (root / FILE).is_file():
            raise CliError(f"{given} is not an Outstack project (no {FILE} in it): make one "
                           f"with `outstack new {given}`")
        return load(root)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / FILE).is_file():
            return load(folder)
    raise CliError(f"no {FILE} in {here} or any folder above it: run this inside a project, "
                   f"pass --project DIR, or make one with `outstack new DIR`")


def load(root: Path) -> Project:
    root = Path(root).resolve()
    path = root / FILE
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise CliError(f"{path} is not valid TOML: {e}") from None
    _check_keys(path, data)
    proj, ota, conn = data.get("project", {}), data.get("ota", {}), data.get("connect", {})
    firmware = root / _text(path, "project.firmware", proj.get("firmware", "firmware"))
    if not (firmware / "main.py").is_file():
        raise CliError(f"{path}: the firmware folder {firmware} has no main.py")
    board = _board(path, "project.board", proj.get("board", "unix"))
    deploy_board = _board(path, "project.deploy_board", proj.get("deploy_board", "rp2040"))
    trust = ota.get("trust", [])
    if not isinstance(trust, list) or not all(isinstance(t, str) for t in trust):
        raise CliError(f"{path}: ota.trust must be a list of key files")
    key = ota.get("key")
    return Project(root=root, name=_text(path, "project.name", proj.get("name", root.name)),
                   firmware=firmware, board=board, deploy_board=deploy_board,
                   key=root / _text(path, "ota.key", key) if key else None,
                   trust=[root / t for t in trust],
                   ota_server=_text(path, "ota.server", ota.get("server", "ota")),
                   port=conn.get("port"), link=conn.get("link"))


def _check_keys(path: Path, data: dict) -> None:
    for section, value in data.items():
        if section not in SECTIONS or not isinstance(value, dict):
            raise CliError(f"{path}: unknown section [{section}] (known: "
                           f"{', '.join(SECTIONS)})")
        unknown = set(value) - SECTIONS[section]
        if unknown:
            raise CliError(f"{path}: unknown setting {section}.{sorted(unknown)[0]} (known in "
                           f"[{section}]: {', '.join(sorted(SECTIONS[section]))})")


def _text(path: Path, key: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise CliError(f"{path}: {key} must be a non-empty string, not {value!r}")
    return value


def _board(path: Path, key: str, value) -> str:
    _text(path, key, value)
    if value not in boards.names():
        raise CliError(f"{path}: {key} = {value!r} is not a known board "
                       f"({', '.join(boards.names())})")
    return value


def add_argument(p) -> None:
    p.add_argument("--project", metavar="DIR",
                   help=f"the project folder (default: the nearest {FILE} at or above here)")
