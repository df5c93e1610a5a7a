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


def stage_config(path, board: str) -> Path:
    """Check a config file and return it (as written to a temporary copy) for the image."""
    cfg = load(path)
    validate(cfg, board, str(path))
    tmp = Path(tempfile.mkdtemp(prefix="outstack-cfg-")) / "config.json"
    tmp.write_text(json.dumps(cfg))
    return tmp
