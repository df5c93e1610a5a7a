"""Flash images for the virtual board: build one from the firmware, check one before boot,
and read files back on the host (with littlefs-python, an independent LittleFS)."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

from . import boards
from .errors import CliError
from .paths import LIB, ROM, micropython

SKIP = {"__pycache__", ".mypy_cache"}
HOST_ONLY = {"requirements.txt"}  # firmware/ files that describe the build, not the board


def _tree(top: Path, dest: str) -> list[tuple[str, str]]:
    files = []
    for path in sorted(top.rglob("*")):
        if (path.is_file() and not SKIP & set(path.parts) and path.suffix != ".pyc"
                and path.name not in HOST_ONLY):
            files.append((str(path), dest + "/" + path.relative_to(top).as_posix()))
    return files


def layout(board: str, firmware: Path, lib: Path = LIB,
           packages: bool = True) -> list[tuple[str, str]]:
    """(host file, board path) pairs: the project's firmware at the root, the framework under
    /lib, board facts, and (packages) the micropython-lib packages the firmware requires."""
    files = _tree(Path(firmware).resolve(), "") + _tree(Path(lib).resolve(), "/lib")
    files.append((str(boards.facts_file(board)), "/lib/outstack/board.py"))
    if packages:
        from . import mlib
        from .stage import requirements

        files += mlib.files(requirements(Path(firmware) / "requirements.txt"))
    return files


def build(image: Path, board: str, files: list[tuple[str, str]]) -> str:
    """Write a fresh image next to `image`, then rename it into place (atomic)."""
    facts = boards.load(board)
    image = Path(image).resolve()
    image.parent.mkdir(parents=True, exist_ok=True)
    tmp = image.with_name(image.name + ".new")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as job:
        json.dump({"image": str(tmp), "block_size": facts["FLASH_BLOCK"],
                   "block_count": facts["FLASH_BLOCKS"], "files": files}, job)
    try:
        out = subprocess.run([micropython(), "_mkimage.py", job.name], cwd=ROM,
                             capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(job.name)
    if out.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise CliError(f"could not build flash image {image}: {out.stdout}{out.stderr}".strip())
    os.replace(tmp, image)
    return out.stdout.strip()


def open_fs(image: Path, board: str):
    """Mount a copy of the image in memory (read-only use); raise CliError if it will not."""
    from littlefs import LittleFS, LittleFSError

    facts = boards.load(board)
    image = Path(image)
    if not image.exists():
        raise CliError(f"flash image {image} does not exist: build one with "
                       f"`outstack image build {image}` or pass --fresh")
    size = facts["FLASH_BLOCK"] * facts["FLASH_BLOCKS"]
    data = image.read_bytes()
    if len(data) != size:
        raise CliError(f"flash image {image} is {len(data)} bytes; a {board} image is {size} bytes "
                       f"({facts['FLASH_BLOCKS']} blocks of {facts['FLASH_BLOCK']})")
    fs = LittleFS(block_size=facts["FLASH_BLOCK"], block_count=facts["FLASH_BLOCKS"],
                  prog_size=256, read_size=256, mount=False)
    fs.context.buffer = bytearray(data)
    try:
        fs.mount()
    except LittleFSError as e:
        raise CliError(f"flash image {image} is corrupt: LittleFS will not mount it ({e})") from None
    return fs


def check(image: Path, board: str) -> None:
    open_fs(image, board)


def read_file(image: Path, board: str, path: str) -> bytes:
    fs = open_fs(image, board)  # held: the file must not outlive its filesystem
    with fs.open(path, "rb") as f:
        return f.read()
