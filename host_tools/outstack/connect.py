"""Where the board is, when a command is not told: `--port` first, then the project's
[connect] settings, then the virtual board this project's `outstack sim` is running (it
leaves its ports in build/sim.json while it runs)."""

import contextlib
import json
import os
from pathlib import Path

from .errors import CliError
from .project import Project

RUNNING = "sim.json"


def announce(project: Project | None, info: dict) -> Path | None:
    """Called by `outstack sim` once the board is up: its ports, for the other commands."""
    if project is None:
        return None
    path = project.build / RUNNING
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{RUNNING}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), **info}))
    os.replace(tmp, path)
    return path


def withdraw(path: Path | None) -> None:
    if path is None:
        return
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running(project: Project) -> dict | None:
    """The ports of this project's virtual board, if one is running."""
    try:
        info = json.loads((project.build / RUNNING).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def _none(project: Project, what: str, setting: str) -> CliError:
    return CliError(f"where is the board? give --port ({what}), set [connect] {setting} in "
                    f"{project.shown(project.root / 'outstack.toml')}, or start this project's "
                    f"virtual board with `outstack sim`")


def usb(project: Project | None, given: str | None) -> str:
    """The USB REPL port (deploy, console, crashlog)."""
    if given:
        return given
    if project is None:
        raise CliError("give --port: the board's USB REPL serial port")
    if project.port:
        return project.port
    sim = running(project)
    if sim:
        return sim["usb"]
    raise _none(project, "the USB REPL serial port", "port")


def link(project: Project | None, given: str | None, board: str | None = None):
    """(UART1 port or HOST:PORT, board kind) for the update link (ota push/status, dev)."""
    sim = running(project) if project else None
    if given or (project and project.link):
        kind = board or (project.deploy_board if project else None)
        if kind is None:
            raise CliError("give --board: the kind of board behind --port")
        return given or project.link, kind  # type: ignore[union-attr]
    if sim:
        return sim["uart"], board or sim["board"]
    if project is None:
        raise CliError("give --port: the board's UART1, or HOST:PORT of its OTA server")
    raise _none(project, "UART1, or HOST:PORT of the OTA server", "link")


@contextlib.contextmanager
def open_link(spec: str, baud: int = 115200):
    """A transfer line to the board's OTA server: TCP for HOST:PORT, else a serial port."""
    from .ota.transfer import SerialLine, TcpLine

    host, sep, port = spec.rpartition(":")
    if sep and port.isdigit() and not spec.startswith("/"):
        line = TcpLine(host or "127.0.0.1", int(port))
    else:
        line = SerialLine(spec, baud)
    try:
        yield line
    finally:
        line.close()
