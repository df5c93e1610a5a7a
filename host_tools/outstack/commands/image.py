"""`outstack image build|check|ls|cat IMAGE`: the virtual board's flash image on the host."""

from pathlib import Path

from .. import image
from ..config import stage_config
from ..project import Project, find


def files_for(project: Project, board: str, config: str | None = None,
              packages: bool = True) -> list[tuple[str, str]]:
    """What goes on the board: the project's firmware (its config.json, or `config`, with the
    project's trusted OTA keys added), the framework, board facts, and the packages."""
    files = [f for f in image.layout(board, project.firmware, packages=packages)
             if f[1] != "/config.json"]
    source = Path(config) if config else project.config
    if source.is_file() or config:
        staged = stage_config(source, board, project.trusted_keys(), project.ota_server)
        files.append((str(staged), "/config.json"))
    return files


def build(project: Project, path: Path, board: str, config: str | None = None,
          source: bool = False) -> str:
    """A fresh image of the project: modules compiled to .mpy for the board, as deploy does."""
    from ..stage import stage

    files = files_for(project, board, config)
    staged = stage(files, board, source, out=project.build / f"image-{board}")
    said = image.build(path, board, [(str(p), dest) for p, dest in staged])
    write_sources(path, project)
    return said


def sources_file(path: Path) -> Path:
    """Beside an image: the hashes of the firmware sources it was built from (`outstack dev`
    pushes at once what was edited since, even before it was started)."""
    return Path(str(path) + ".sources.json")


def write_sources(path: Path, project: Project) -> None:
    import hashlib
    import json

    top = project.firmware
    hashes = {p.relative_to(top).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
              for p in sorted(top.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
    sources_file(path).write_text(json.dumps(hashes, indent=0))


def default_image(project: Project, board: str) -> Path:
    return project.build / f"flash-{board}.img"


def run(args):
    project = find(args.project) if args.action == "build" or not args.image else None
    board = args.board or (project.board if project else "unix")
    path = Path(args.image) if args.image else default_image(project, board)
    if args.action == "build":
        print(f"{path}: {build(project, path, board, args.config, args.source)}")
    elif args.action == "check":
        image.check(path, board)
        print(f"{path}: mounts, {board} geometry")
    elif args.action == "ls":
        fs = image.open_fs(path, board)
        for top, _dirs, names in fs.walk("/"):
            for name in names:
                print(f"{top.rstrip('/')}/{name}")
    else:
        print(image.read_file(path, board, args.path or "/").decode(errors="replace"), end="")
