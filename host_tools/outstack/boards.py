"""Board facts. Each boards/<name>/board.py is device code made only of literal assignments;
the host reads the same file with `ast`, so both sides share one source of truth."""

import ast
from pathlib import Path

from .errors import CliError
from .paths import BOARDS


def names() -> list[str]:
    return sorted(p.parent.name for p in BOARDS.glob("*/board.py"))


def facts_file(name: str) -> Path:
    path = BOARDS / name / "board.py"
    if not path.is_file():
        raise CliError(f"unknown board '{name}': known boards are {', '.join(names())}")
    return path


def load(name: str) -> dict:
    facts = {}
    for node in ast.parse(facts_file(name).read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "const":
                value = value.args[0]
            facts[node.targets[0].id] = ast.literal_eval(value)
    return facts


def check_watchdog(name: str, timeout_ms: int) -> None:
    limit = load(name)["WDT_MAX_MS"]
    if not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= limit:
        raise CliError(
            f"watchdog timeout {timeout_ms} ms is above the {name} limit of {limit} ms"
            if isinstance(timeout_ms, int) and timeout_ms > limit
            else f"watchdog timeout must be a whole number of ms from 1 to {limit}, not {timeout_ms!r}"
        )
