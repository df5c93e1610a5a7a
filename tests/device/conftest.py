"""Collects tests/device/test_*.py as *device* tests: each file runs inside MicroPython on a
fresh virtual board, one pytest item per `test_` function, the device traceback on failure."""

import ast
import importlib.util
import os
import re
from pathlib import Path

import pytest

from outstack import image
from outstack.sim import VirtualBoard
from tests.conftest import DEMO

HERE = Path(__file__).parent
RESULT = re.compile(r"@@ (PASS|FAIL|SKIP) (\w+)(.*?)\r?\n(.*?)@@ END", re.S)
TIMEOUT = 300


def pytest_pycollect_makemodule(module_path, parent):
    # Device test files are MicroPython: collect them ourselves, never import them here.
    if module_path.parent == HERE:
        return DeviceFile.from_parent(parent, path=module_path)
    return None


class DeviceFile(pytest.File):
    def collect(self):
        tree = ast.parse(self.path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                yield DeviceItem.from_parent(self, name=node.name)

    def results(self, tmp_root: Path) -> dict:
        if not hasattr(self, "_results"):
            self._results = run_on_board(self.path, tmp_root)
        return self._results


class DeviceItem(pytest.Item):
    def runtest(self):
        tmp = self.config._tmp_path_factory.mktemp(self.parent.path.stem)
        results, output = self.parent.results(tmp)
        if self.name not in results and "import" in results:
            raise DeviceError(f"the test file failed to import:\n{results['import'][1]}")
        if self.name not in results:
            raise DeviceError(f"{self.name} did not report (board output follows)\n{output}")
        status, detail = results[self.name]
        if status == "SKIP":
            pytest.skip(detail.strip() or "skipped on the device")
        if status == "FAIL":
            raise DeviceError(detail)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, DeviceError):
            return f"device traceback:\n{excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"device: {self.name}"


class DeviceError(Exception):
    pass


# OUTSTACK_DEVICE_BOARD=mps2-an385 runs the suite on real firmware under QEMU instead.
DEVICE_BOARD = os.environ.get("OUTSTACK_DEVICE_BOARD", "unix")


def _engine(img: Path, board: str):
    if board == "mps2-an385":
        from outstack.sim.qemu import QemuBoard

        return QemuBoard(img, board)
    return VirtualBoard(img, board)


def run_on_board(test_file: Path, tmp: Path, board: str = DEVICE_BOARD):
    main = f"import _runner\n_runner.run({test_file.stem!r})\n"
    (tmp / "main.py").write_text(main)
    files = [f for f in image.layout(board, DEMO) if f[1] != "/main.py"]
    files += [(str(tmp / "main.py"), "/main.py"), (str(HERE / "_runner.py"), "/lib/_runner.py"),
              (str(HERE / "_util.py"), "/lib/_util.py"),
              (str(test_file), f"/lib/{test_file.name}")]
    files += data_files(test_file, tmp)
    img = tmp / "flash.img"
    image.build(img, board, files)
    with _engine(img, board) as vb:
        vb.start()
        _wait_done(vb)
        text = vb.output.decode(errors="replace")
    results = {m.group(2): (m.group(1), m.group(3) + m.group(4)) for m in RESULT.finditer(text)}
    if os.environ.get("OUTSTACK_DEVICE_OUTPUT"):  # show what the board printed (figures)
        print(f"\n--- {test_file.name} on the board ---\n{text}")
    return results, text


def data_files(test_file: Path, tmp: Path) -> list[tuple[str, str]]:
    """Files a device test needs from the host: tests/device/gen_<name>.py (for test_<name>.py),
    host Python, has generate(outdir); what it writes there lands on the board under /testdata."""
    gen = test_file.with_name("gen_" + test_file.name.removeprefix("test_"))
    if not gen.is_file():
        return []
    spec = importlib.util.spec_from_file_location(f"device_gen_{gen.stem}", gen)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp / "testdata"
    out.mkdir(exist_ok=True)
    mod.generate(out)
    return [(str(p), "/testdata/" + p.relative_to(out).as_posix())
            for p in sorted(out.rglob("*")) if p.is_file()]


def _wait_done(vb):
    import time

    end = time.monotonic() + TIMEOUT
    while b"@@ DONE" not in vb.output and time.monotonic() < end and vb.state != "halted":
        time.sleep(0.05)
