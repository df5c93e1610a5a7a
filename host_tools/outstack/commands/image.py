"""`outstack image build|check|ls|cat IMAGE`: the virtual board's flash image on the host."""

from pathlib import Path

from .. import image
from ..config import stage_config


def files_for(board: str, config: str | None, packages: bool = True):
    files = image.layout(board, packages=packages)
    if config:
        files = [f for f in files if f[1] != "/config.json"]
        files.append((str(stage_config(config, board)), "/config.json"))
    return files


def run(args):
    path = Path(args.image)
    if args.action == "build":
        print(f"{path}: {image.build(path, args.board, files_for(args.board, args.config))}")
    elif args.action == "check":
        image.check(path, args.board)
        print(f"{path}: mounts, {args.board} geometry")
    elif args.action == "ls":
        fs = image.open_fs(path, args.board)
        for top, _dirs, names in fs.walk("/"):
            for name in names:
                print(f"{top.rstrip('/')}/{name}")
    else:
        print(image.read_file(path, args.board, args.path or "/").decode(errors="replace"), end="")
