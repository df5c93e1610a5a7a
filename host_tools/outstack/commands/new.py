"""`outstack new DIR [--board NAME]`: a project of your own, ready for `outstack sim` and
`outstack dev`: firmware (boot.py, main.py, app/ with one example server, config.json),
requirements, a test, a dev signing key pair whose public key the board will trust, and the
project file naming the board."""

from pathlib import Path

from .. import boards
from ..errors import CliError
from ..project import FILE, load

TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "project"
FILLED = {FILE, "README.md"}  # files with {name} / {board} fields
RENAMED = {"gitignore": ".gitignore"}  # dotfiles do not travel well as package data


def run(args):
    root = Path(args.dir)
    name = args.name or root.resolve().name
    if not name.isidentifier() and not name.replace("-", "_").isidentifier():
        raise CliError(f"{name!r} is not a usable project name: letters, digits, - and _ "
                       f"(give another with --name)")
    board = args.board
    boards.load(board)
    if root.exists() and any(root.iterdir()):
        raise CliError(f"{root} exists and is not empty: choose a new folder")
    made = _copy(root, {"name": name, "board": "unix", "deploy_board": board})
    _keys(root)
    project = load(root)
    print(f"made project {name!r} in {root} for {board} (virtual board: unix):")
    for path in made + ["keys/ota-key.pem", "keys/ota-pub.json", "keys/ota-pub.pem"]:
        print(f"  {path}")
    print(f"the board will trust the dev key {project.trusted_keys()[0]['kid']} "
          f"(keys/ota-pub.json, added to its config on every build)")
    print(f"next: cd {root} && outstack sim      (then `outstack dev` in another terminal)")


def _copy(root: Path, fields: dict) -> list[str]:
    made = []
    for src in sorted(TEMPLATE.rglob("*")):
        if not src.is_file() or "__pycache__" in src.parts:
            continue
        rel = src.relative_to(TEMPLATE).as_posix()
        rel = RENAMED.get(rel, rel)
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text()
        if rel in FILLED:
            text = text.format(**fields)
        dest.write_text(text)
        made.append(rel)
    return made


def _keys(root: Path) -> None:
    from ..ota import keys

    keys.write_keys(keys.generate(), root / "keys", False)

