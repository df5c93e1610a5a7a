"""`outstack dev`: the edit-reload loop. Watches the project's firmware; on every save it
compiles the changed modules of the module area (app/), signs them with the project's dev
key and pushes them through the board's OTA server (UART1 or TCP), exactly as a field update
goes: only the servers of those modules restart, the health check runs, and a version that
fails is rolled back with its traceback shown here. No reboot. Each reload prints the time
from the save to the new code serving (the board's verdict after its health check)."""

import hashlib
import time
from pathlib import Path

from ..errors import CliError
from ..project import Project, add_argument as add_project, find
from .. import connect

SETTLE_S = 0.05  # a save is whole when two looks this far apart agree (editors write in steps)
AREA = "app"


def add_arguments(p):
    p.add_argument("--port", help="the board's UART1 or HOST:PORT of its OTA server (default: "
                                  "[connect] link of outstack.toml, else this project's "
                                  "running virtual board)")
    p.add_argument("--baud", type=int, default=115200, help="UART1 line rate (default 115200)")
    p.add_argument("--board", help="board kind to compile and sign for (default: the running "
                                   "virtual board's, else deploy_board of outstack.toml)")
    p.add_argument("--key", help="signing key (default: ota.key of outstack.toml)")
    p.add_argument("--source", action="store_true", help="push .py sources instead of .mpy")
    p.add_argument("--count", type=int, help="stop after this many reloads")
    p.add_argument("--interval", type=float, default=0.1,
                   help="seconds between looks at the files (default 0.1)")
    add_project(p)


def run(args):
    project = find(args.project)
    key = _key(project, args.key)
    link, board = connect.link(project, args.port, args.board)
    sim = connect.running(project)
    baseline = None
    if sim and link == sim.get("uart"):  # what the virtual board's image was built from
        from .image import sources_file

        baseline = sources_file(Path(sim["image"]))
    loop = DevLoop(project, key, link, board, args.baud, args.source, baseline)
    seq = loop.start()
    print(f"[dev] watching {project.shown(project.firmware)}; pushing to {link} as {board} "
          f"(board's last update: {seq}); Ctrl-C stops")
    reloads = 0
    try:
        while args.count is None or reloads < args.count:
            changed = loop.wait(args.interval)
            if loop.reload(changed):
                reloads += 1
    except KeyboardInterrupt:
        pass
    ok = sum(1 for r in loop.results if r.ok)
    if loop.results:
        times = sorted(r.seconds for r in loop.results if r.ok)
        med = f", median {times[len(times) // 2]:.2f} s save-to-serving" if times else ""
        print(f"[dev] {len(loop.results)} reloads, {ok} installed{med}")
    return 0 if ok == len(loop.results) else 1


def _key(project: Project, given: str | None):
    from ..ota import keys

    path = Path(given) if given else project.key
    if path is None:
        raise CliError("no signing key: give --key, or set ota.key in outstack.toml")
    if not path.is_file():
        raise CliError(f"signing key {project.shown(path)} does not exist: make a dev key with "
                       f"`outstack ota keygen --out {project.shown(path.parent)}`")
    return keys.load_private(path)


class Result:
    def __init__(self, modules, verdict, seconds, ok):
        self.modules, self.verdict, self.seconds, self.ok = modules, verdict, seconds, ok


class DevLoop:
    def __init__(self, project: Project, key, link: str, board: str, baud=115200, source=False,
                 baseline: Path | None = None):
        self.project, self.key, self.link, self.board = project, key, link, board
        self.baud, self.source = baud, source
        self.baseline = baseline if baseline and baseline.is_file() else None
        self.seen = _scan(project.firmware, {})
        if self.baseline:  # the board runs these: what differs now is pushed at once
            import json

            self.seen = {rel: (0.0, h) for rel, h in json.loads(self.baseline.read_text()).items()}
        self.seq = 0
        self.results: list[Result] = []

    def start(self) -> int:
        """Ask the board which update it accepted last: the next one is numbered after it."""
        from ..ota.transfer import Sender

        with connect.open_link(self.link, self.baud) as line:
            st = Sender(line).status()
        self.seq = int(st.get("accepted", 0))
        return self.seq

    def wait(self, interval: float) -> dict[str, float]:
        """Block until files change; {path relative to firmware: save time (mtime)}."""
        while True:
            time.sleep(interval)
            now = _scan(self.project.firmware, self.seen)
            if _same(now, self.seen):
                continue
            while True:  # let the save finish
                time.sleep(SETTLE_S)
                again = _scan(self.project.firmware, now)
                if _same(again, now):
                    break
                now = again
            changed = {rel: now[rel][0] for rel in now
                       if rel not in self.seen or self.seen[rel][1] != now[rel][1]}
            gone = [rel for rel in self.seen if rel not in now]
            self.seen = now
            for rel in gone:
                print(f"[dev] {rel} was removed: a removed module needs `outstack deploy`")
            if changed:
                return changed

    def reload(self, changed: dict[str, float]) -> bool:
        """Push what changed; False when nothing could be pushed (said why)."""
        mods = {rel: t for rel, t in changed.items() if _hot(rel)}
        for rel in sorted(set(changed) - set(mods)):
            print(f"[dev] {rel} changed: not hot-swappable (only modules under {AREA}/ are): "
                  f"`outstack deploy`, or `outstack sim --fresh` for the virtual board")
        if not mods:
            return False
        saved = max(mods.values())
        try:
            data = self._package(sorted(mods))
        except CliError as e:  # a syntax error: nothing goes to the board
            print(f"[dev] {e}")
            return False
        verdict = self._push(data)
        took = time.time() - saved
        ok = verdict.startswith("installed")
        self.results.append(Result(sorted(mods), verdict, took, ok))
        names = ", ".join(sorted(mods))
        if ok:
            print(f"[dev] {names}: {verdict}; serving {took:.2f} s after the save")
            self._remember(mods)
        else:
            print(f"[dev] {names}: {verdict}")
            self._show_traceback(verdict)
        return True

    def _remember(self, mods) -> None:
        """The board runs these now: a restarted `outstack dev` does not push them again."""
        if not self.baseline:
            return
        import json

        known = json.loads(self.baseline.read_text())
        known.update({rel: self.seen[rel][1] for rel in mods if rel in self.seen})
        self.baseline.write_text(json.dumps(known, indent=0))

    def _package(self, rels: list[str]) -> bytes:
        from ..ota import pack as P

        srcs = P.sources([f"{self.project.firmware / rel}={rel}" for rel in rels])
        entries, blobs = P.build_modules(srcs, self.board, self.source, "0.0.0", {})
        self.seq += 1
        manifest = P.update_manifest(self.board, self.seq, P.framework_version(), entries)
        return P.assemble(manifest, blobs, self.key).to_bytes()

    def _push(self, data: bytes) -> str:
        from ..ota.transfer import Sender

        with connect.open_link(self.link, self.baud) as line:
            try:
                return Sender(line).push(data)
            except CliError as e:
                return f"not installed: {e}"

    def _show_traceback(self, verdict: str) -> None:
        """The crash that made the board roll back, from its crash reports (console, read)."""
        from ..console import BoardError, ask, connect as console_connect

        if "rolled back" not in verdict:
            return
        try:
            ch = console_connect(self.link, via="link")
            try:
                crashes = ask(ch, "crashes")
            finally:
                ch.close()
        except (CliError, BoardError, OSError) as e:
            print(f"[dev] (no traceback: the board's crash reports could not be read: {e})")
            return
        tb = newest_traceback(crashes)
        if tb:
            print("[dev] the new version's traceback, from the board:")
            print("\n".join("    " + line for line in tb.splitlines()))


def _hot(rel: str) -> bool:
    return rel.startswith(AREA + "/") and rel.endswith(".py")


def _scan(top: Path, before: dict) -> dict[str, tuple[float, str]]:
    """{path: (mtime, sha256)} of the firmware's files; unchanged stat, no re-hash."""
    out = {}
    for path in top.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        rel = path.relative_to(top).as_posix()
        st = path.stat()
        old = before.get(rel)
        if old and old[0] == st.st_mtime:
            out[rel] = old
            continue
        try:
            out[rel] = (st.st_mtime, hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:  # gone between the look and the read: seen next time
            continue
    return out


def _same(a: dict, b: dict) -> bool:
    """The same files with the same contents (a touched file has not changed)."""
    return a.keys() == b.keys() and all(a[rel][1] == b[rel][1] for rel in a)


def newest_traceback(crashes) -> str | None:
    """The newest traceback in the console's `crashes` answer, whatever it holds."""
    found: list[tuple[float, str]] = []

    def walk(x, when=0.0):
        if isinstance(x, dict):
            t = x.get("uptime_ms") or x.get("t") or when
            tb = x.get("tb") or x.get("traceback")
            if isinstance(tb, str) and tb:
                found.append((float(t) if isinstance(t, (int, float)) else 0.0, tb))
            for v in x.values():
                walk(v, t if isinstance(t, (int, float)) else when)
        elif isinstance(x, list):
            for v in x:
                walk(v, when)

    walk(crashes)
    return max(found)[1] if found else None
