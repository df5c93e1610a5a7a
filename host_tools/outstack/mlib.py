"""micropython-lib packages for the virtual board's flash image. A real board gets them
with `mpremote mip install NAME` at deploy; the virtual board's come from the pinned
micropython-lib snapshot in ../shared/vendor when it holds them, else from their
PyPI releases (micropython-NAME, the sdist, checked against PyPI's SHA-256), unpacked once
into build/mlib/. Without a network the image is built without them and the framework's
own fallbacks run (outstack.minilog for logging); the builder says so once."""

import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

from .paths import BUILD

CACHE = BUILD / "mlib"
_warned = set()


def release(name: str) -> str:
    """Which PyPI release of `name` is in the cache ("micropython-NAME VERSION")."""
    mark = CACHE / name.partition("@")[0] / ".complete"
    return " ".join(mark.read_text().split()[:2]) if mark.exists() else "none"


def files(names: list[str], quiet: bool = False) -> list[tuple[str, str]]:
    """(host file, board path) pairs for the packages `names` (NAME or NAME@VERSION)."""
    out = []
    for req in names:
        name, _, version = req.partition("@")
        where = CACHE / name
        if not (where / ".complete").exists():
            try:
                pinned = name in PINNED and _from_vendor(name, version, where)
                pinned or _fetch(name, version, where)
            except Exception as e:  # offline or not on PyPI: the fallback runs instead
                if not quiet and name not in _warned:
                    _warned.add(name)
                    print(f"outstack: micropython-lib package {name!r} not put on the image "
                          f"({e}); the framework's fallback stands in", file=sys.stderr)
                continue
        for path in sorted(where.rglob("*.py")):
            out.append((str(path), "/lib/" + path.relative_to(where).as_posix()))
    return out


def _fetch(name: str, version: str, where: Path) -> None:
    dist = f"micropython-{name}"
    # A fresh opener each time: it reads the proxy settings now (urlopen's shared one keeps
    # whatever they were at the first call in this process).
    web = urllib.request.build_opener()
    with web.open(f"https://pypi.org/pypi/{dist}/json", timeout=20) as r:
        meta = json.load(r)
    version = version or meta["info"]["version"]
    sdists = [f for f in meta["releases"].get(version, []) if f["packagetype"] == "sdist"]
    if not sdists:
        raise RuntimeError(f"{dist} {version} has no source release on PyPI")
    f = sdists[0]
    with web.open(f["url"], timeout=60) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != f["digests"]["sha256"]:
        raise RuntimeError(f"{f['filename']} does not match PyPI's SHA-256")
    tmp = where.with_name(where.name + ".new")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            parts = Path(m.name).parts[1:]  # below the sdist's top folder
            top = parts[0] if parts else ""
            if m.isfile() and m.name.endswith(".py") and (top == name or top == name + ".py"):
                target = tmp.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(m).read())
    if not tmp.exists():
        raise RuntimeError(f"{f['filename']} holds no {name!r} package")
    (tmp / ".complete").write_text(f"{dist} {version} {f['digests']['sha256']}\n")
    if where.exists():
        import shutil

        shutil.rmtree(where)
    tmp.rename(where)


VENDOR_DIR = BUILD.parent.parent / "shared" / "vendor"  # the pinned upstream snapshots
VENDOR_DIRS = ("micropython", "python-stdlib", "python-ecosys")
# Taken from the pinned snapshot rather than PyPI. Only these for now: the snapshot's logging
# (0.6.2) is newer than PyPI's (0.5.2), and tests/host/test_console.py fails with it.
PINNED = {"umqtt.simple", "umqtt.robust"}


def _from_vendor(name: str, version: str, where: Path) -> bool:
    """Take `name` from the pinned micropython-lib snapshot (../shared/vendor), if there is
    one and it holds that package (at `version`, when one is asked for); False otherwise."""
    import re

    found = sorted(VENDOR_DIR.glob("micropython-lib-*.tar.gz"))
    if not found:
        return False
    tarball = found[-1]
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        top = next(iter(members)).split("/")[0]
        for d in VENDOR_DIRS:
            base = f"{top}/{d}/{name}/"
            if base + "manifest.py" in members:
                break
        else:
            return False
        manifest = tar.extractfile(members[base + "manifest.py"]).read().decode()
        found = re.search(r'version\s*=\s*"([^"]+)"', manifest)
        have = found[1] if found else "0"
        if version and version != have:
            return False
        tmp = where.with_name(where.name + ".new")
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp)
        for path, m in members.items():
            rel = Path(path[len(base):]) if path.startswith(base) else None
            if (rel is None or not m.isfile() or rel.suffix != ".py" or rel.name == "manifest.py"
                    or rel.name.startswith(("example", "test_"))
                    or {"examples", "tests", "test"} & set(rel.parts[:-1])):
                continue
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(m).read())
    if not tmp.exists():
        return False
    (tmp / ".complete").write_text(f"micropython-{name} {have} {tarball.name}\n")
    if where.exists():
        import shutil

        shutil.rmtree(where)
    tmp.rename(where)
    return True
