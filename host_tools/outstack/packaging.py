"""package.json for `mpremote mip install`: regenerate with `make package.json` whenever a
framework module is added or removed (a test fails until it matches)."""

import json
import re

from .paths import LIB, ROOT


def package_json() -> dict:
    files = sorted(p.relative_to(LIB).as_posix() for p in (LIB / "outstack").rglob("*.py"))
    version = re.search(r'__version__ = "(.+)"', (LIB / "outstack/__init__.py").read_text())[1]
    return {"urls": [[f, f"lib/{f}"] for f in files], "deps": [], "version": version}


def render() -> str:
    data = package_json()
    rows = ",\n".join(f"    {json.dumps(u)}" for u in data["urls"])
    return (f'{{\n  "urls": [\n{rows}\n  ],\n  "deps": {json.dumps(data["deps"])},\n'
            f'  "version": {json.dumps(data["version"])}\n}}\n')


if __name__ == "__main__":
    (ROOT / "package.json").write_text(render())
    print("package.json:", len(package_json()["urls"]), "files")
