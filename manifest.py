# Freezes Outstack Micro into a MicroPython firmware image (micropython-lib manifest style).
# Build for a Raspberry Pi Pico (in a MicroPython checkout; BOARD must be on the command line,
# make only passes command-line variables on to this manifest):
#   make -C mpy-cross
#   make -C ports/rp2 BOARD=RPI_PICO submodules
#   make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/outstack/manifest.py
# Other boards: BOARD=RPI_PICO2 (rp2350), make -C ports/esp32 BOARD=ESP32_GENERIC (esp32),
# make -C ports/stm32 BOARD=PYBV11 (stm32); for any other board set OUTSTACK_BOARD=<name of a
# folder in boards/>, or include() this file with board="<name>". The app frozen beside the
# framework is firmware/ here, or the folder OUTSTACK_APP names (empty: none): `outstack
# firmware` builds a project's own.
#
# What a frozen build changes on the board:
# - sys.path is ['', '.frozen', '/lib']: the frozen outstack package wins over /lib/outstack,
#   so `outstack deploy` and OTA updates of framework modules do not take effect on it.
# - boot.py and main.py are not frozen: a frozen main.py (or boot.py) runs instead of the file
#   on the filesystem (pyexec_file_if_exists looks in .frozen first), so it could never be
#   replaced. `outstack deploy` copies them; main.py runs only after a hard reset or a soft
#   reset from the friendly REPL, never after a soft reset from the raw REPL.
import os

metadata(version="0.1.0", description="Outstack Micro: a service framework for MicroPython boards")

# MicroPython board names (BOARD=) to the facts in boards/<name>/board.py.
_PORT_BOARDS = {
    "RPI_PICO": "rp2040",
    "RPI_PICO_W": "rp2040",
    "RPI_PICO2": "rp2350",
    "RPI_PICO2_W": "rp2350",
    "ESP32_GENERIC": "esp32",
    "PYBV10": "stm32",
    "PYBV11": "stm32",
}


def _board():
    env_board = os.environ.get("BOARD", "")
    name = options.board or os.environ.get("OUTSTACK_BOARD") or _PORT_BOARDS.get(env_board)
    if not name or not os.path.isfile(os.path.join("boards", name, "board.py")):
        known = sorted(os.listdir("boards"))
        raise ValueError("which board's facts to freeze? set OUTSTACK_BOARD to one of %s "
                         "(got %r, BOARD=%r)" % (", ".join(known), name, env_board))
    return name


def _port_modules():
    # The board's own manifest (Pico W: network stack) includes the port's; boards without one
    # take the port's, which keeps its frozen modules (asyncio, onewire, neopixel...).
    try:
        include("$(BOARD_DIR)/manifest.py")
    except Exception as e:
        said = str(e)
        if said.count("Error in manifest file") != 1 or "[Errno 2]" not in said:
            raise
        include("$(PORT_DIR)/boards/manifest.py")


def _read(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return f.read()


def _board_facts(name):
    # hal imports outstack.board, which lives in boards/<name>/: stage it as outstack/board.py.
    base = os.path.join("build", "freeze-" + name)
    dest = os.path.join(base, "outstack", "board.py")
    text = _read(os.path.join("boards", name, "board.py"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if _read(dest) != text:  # an unchanged file keeps its timestamp: no rebuild
        with open(dest, "w") as f:
            f.write(text)
    module("outstack/board.py", base_path=base)


def _app():
    # The app to freeze: OUTSTACK_APP names a project's firmware folder (`outstack firmware`
    # sets it; empty: none, the framework alone), else firmware/ beside this file if any.
    given = os.environ.get("OUTSTACK_APP")
    if given is None:
        return "firmware" if os.path.isfile(os.path.join("firmware", "main.py")) else None
    return given or None


def _requirements(app):
    # The framework's own (logging: outstack.log; minilog stands in without it), then the app's.
    names = ["logging"]
    text = _read(os.path.join(app, "requirements.txt")) if app else None
    for line in (text or "").splitlines():
        name = line.split("#", 1)[0].strip().split("@", 1)[0]
        if name and name not in names:
            names.append(name)
    return names


def _app_modules(app):
    # The app's modules besides boot.py and main.py (its servers), frozen at the top level.
    for name in sorted(os.listdir(app)):
        path = os.path.join(app, name)
        if name.endswith(".py") and name not in ("boot.py", "main.py"):
            module(name, base_path=app)
        elif os.path.isfile(os.path.join(path, "__init__.py")):
            package(name, base_path=app)


_port_modules()
include("$(MPY_DIR)/extmod/asyncio")  # the kernel's base; a no-op where the port has it already
_APP = _app()
for _name in _requirements(_APP):
    require(_name)
package("outstack", base_path="lib")
_board_facts(_board())
if _APP:
    _app_modules(_APP)
