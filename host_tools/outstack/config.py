"""The device config (firmware/config.json, /config.json on the board), checked on the host
against the board's facts before it goes anywhere near a board."""

import json
import tempfile
from pathlib import Path

from . import boards
from .errors import CliError


def load(path) -> dict:
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise CliError(f"config file {path} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise CliError(f"config file {path} must hold a JSON object")
    return cfg


def validate(cfg: dict, board: str, where: str) -> None:
    if "watchdog_ms" in cfg:
        try:
            boards.check_watchdog(board, cfg["watchdog_ms"])
        except CliError as e:
            raise CliError(f"{where}: {e}") from None


def stage_config(path, board: str, keys: list[dict] | None = None,
                 ota_server: str = "ota") -> Path:
    """Check a config file and return it (as written to a temporary copy) for the board:
    with `keys`, the OTA server's settings trust those public keys too."""
    cfg = load(path)
    validate(cfg, board, str(path))
    if keys:
        servers = cfg.setdefault("servers", {})
        if not isinstance(servers, dict):
            raise CliError(f"{path}: 'servers' must map server names to settings")
        ota = servers.setdefault(ota_server, {})
        if not isinstance(ota, dict):
            raise CliError(f"{path}: the settings of {ota_server!r} must be an object")
        have = ota.get("keys", [])
        ota["keys"] = have + [k for k in keys if k not in have]
    tmp = Path(tempfile.mkdtemp(prefix="outstack-cfg-")) / "config.json"
    tmp.write_text(json.dumps(cfg))
    return tmp
