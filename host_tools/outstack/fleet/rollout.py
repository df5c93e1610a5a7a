"""The rollout engine: a release to the fleet in steps (a canary, then percentages), each
step's install results and soak health checked against the halt rule; on a breach it halts
and rolls back the boards that took the release. State lives in SQLite (store.py): a host
killed at any point resumes with `fleet resume` (docs/FLEET.md)."""

import hashlib
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import CliError
from . import push
from . import rule as R
from .store import TOOK

SEND_TIMEOUT = 120.0
PARALLEL = 16  # transfers at once
LOST_GRACE = 20.0  # s: a board counts as lost when its will stands this long, host connected
BUSY_WAIT = 3.0  # s: a board busy installing another update (a UART/TCP push) is asked again
BUSY = "refused (busy)"  # how a board says so (lib/outstack/ota/apply.py)


def deliver(fleet, bid: str, data: bytes, timeout: float = SEND_TIMEOUT, note=None) -> dict:
    """push.send, asked again every BUSY_WAIT s while the board says it is busy installing
    another update, until `timeout` (counted from the first offer) runs out; then its last
    word stands. `note(said)` hears each busy answer. Raise TimeoutError as push.send does."""
    end = time.monotonic() + timeout
    while True:
        res = push.send(fleet, bid, data, max(1.0, end - time.monotonic()))
        said = str(res.get("said"))
        if not said.startswith(BUSY) or time.monotonic() + BUSY_WAIT >= end:
            return res
        if note is not None:
            note(said)
        time.sleep(BUSY_WAIT)


def open_package(path) -> tuple[bytes, dict]:
    from ..ota import container

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read package {path}: {e.strerror}") from None
    m = container.parse(data, str(path)).fields()
    if m.get("type") != "update" or not m.get("modules"):
        raise CliError(f"{path} is not an update package (a rollout sends module updates)")
    return data, m


def parse_steps(text: str) -> list[float]:
    try:
        steps = [float(s) for s in text.split(",")]
    except ValueError:
        raise CliError(f"--steps must be percentages like 5,25,50,100, not {text!r}") from None
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(steps):
        raise CliError(f"--steps must rise within 0 < p <= 100, like 5,25,50,100, not {text!r}")
    return steps


def start(store, fleet, package, canary: int, steps: list[float], soak: float, rule: str) -> int:
    R.parse(rule)
    if canary < 1:
        raise CliError(f"--canary must be at least 1 board, not {canary}")
    data, m = open_package(package)
    with fleet.cond:
        boards = sorted(fleet.boards)
    if not boards:
        raise CliError("no boards have announced themselves on this broker: nothing to roll out to")
    return store.create(Path(package).resolve(), hashlib.sha256(data).hexdigest(), m["seq"],
                        m["board"], [e["path"].rsplit(".", 1)[0].lstrip("/").replace("/", ".")
                                     for e in m["modules"]], canary, steps, soak, rule, boards)


class Engine:
    def __init__(self, store, fleet, rid, key=None, say=print, poll=0.5):
        self.store, self.fleet, self.rid, self.key = store, fleet, rid, key
        self.say, self.poll = say, poll
        r = store.rollout(rid)
        if r is None:
            raise CliError(f"no rollout {rid} in this state file")
        self.data, _ = open_package(r["package"])
        self.sha = r["sha"]
        self.rule = R.parse(r["rule"])

    def run(self, rollback=True) -> str:
        """Drive the rollout until it is done, halted or rolled back; its final state."""
        while True:
            r = self.store.rollout(self.rid)
            if r["state"] == "running":
                self.step(r, rollback)
            elif r["state"] == "soaking":
                self.soak(r, rollback)
            else:
                return r["state"]

    # ----- a step: choose its boards, send, check ----------------------------------------
    def want(self, r) -> int:
        n = len(self.store.targets(self.rid))
        steps = json.loads(r["steps"])
        k = r["step"]
        return min(n, r["canary"] if k == 0 else math.ceil(steps[k - 1] * n / 100))

    def last_step(self, r) -> int:
        return len(json.loads(r["steps"]))

    def step(self, r, rollback):
        k = r["step"]
        self.assign(r, k)
        todo = self.store.targets(self.rid, "pending", "sending")
        self.say(f"rollout {self.rid} step {k} ({'canary' if k == 0 else 'to %d boards' % self.want(r)}): "
                 f"sending update {r['seq']} to {len(todo)} boards")
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(lambda t: self.send(t["board"]), todo))
        if self.store.rollout(self.rid)["state"] != "running":
            return  # halted from outside while it sent
        if self.check(r, rollback):
            return
        self.store.move(self.rid, ("running",), state="soaking", soak_until=time.time() + r["soak"])

    def assign(self, r, k):
        online = {b for b, x in self.fleet.boards.items() if x.online}
        for t in self.store.targets(self.rid, "skipped"):
            if t["board"] in online:  # away at its step, back now: it catches up here
                self.store.target(self.rid, t["board"], state="pending", step=k)
        have = len([t for t in self.store.targets(self.rid) if t["step"] is not None])
        idle = sorted(self.store.targets(self.rid, "idle"),
                      key=lambda t: (t["board"] not in online, t["board"]))
        for t in idle[: max(0, self.want(r) - have)]:
            self.store.target(self.rid, t["board"], state="pending", step=k)

    def send(self, bid):
        self.store.target(self.rid, bid, state="sending")
        b = self.fleet.board(bid)
        try:
            if b.result.get("sha") == self.sha and not str(b.result.get("said")).startswith(BUSY):
                res = dict(b.result)  # it took this package before the host went down
            elif not b.online:
                self.store.target(self.rid, bid, state="skipped", detail="offline")
                return
            else:
                res = deliver(self.fleet, bid, self.data, note=lambda said: self.store.target(
                    self.rid, bid, detail="asking again in %g s: %s" % (BUSY_WAIT, said)))
        except TimeoutError as e:
            state = "failed" if b.online else "skipped"
            self.store.target(self.rid, bid, state=state, detail=str(e))
            return
        said = str(res.get("said"))
        state = "installed" if res.get("ok") else "refused" if said.startswith("refused") \
            else "failed"
        self.store.target(self.rid, bid, state=state, detail=said)

    # ----- the soak: the boards that took it stay healthy ---------------------------------
    def soak(self, r, rollback):
        last = time.time()
        while time.time() < (r["soak_until"] or 0):
            if self.store.rollout(self.rid)["state"] != "soaking":
                return  # halted from outside
            now = time.time()
            if not self.fleet.connected:  # the broker is away: its time is no soak
                self.store.set(self.rid, soak_until=(r["soak_until"] or now) + now - last)
            elif self.catch_up(r):  # they soak too: the soak starts again
                self.store.set(self.rid, soak_until=time.time() + r["soak"])
            last = now
            r = self.store.rollout(self.rid)
            self.health(r)
            if self.check(r, rollback):
                return
            time.sleep(self.poll)
        self.health(r)
        if self.check(r, rollback):
            return
        # The step is over; an operator's halt that landed since the last look stands.
        k = r["step"]
        if k >= self.last_step(r):
            skipped = len(self.store.targets(self.rid, "skipped"))
            if self.store.move(self.rid, ("soaking",), healthy=True, state="done",
                               reason=f"{skipped} boards skipped (offline)" if skipped else None):
                self.say(f"rollout {self.rid}: done" + (f", {skipped} boards skipped (offline)"
                                                        if skipped else ""))
        else:
            self.store.move(self.rid, ("soaking",), healthy=True, state="running", step=k + 1)

    def catch_up(self, r) -> int:
        """Send the release to boards skipped (offline) earlier that are back online now;
        how many took it."""
        back = [t["board"] for t in self.store.targets(self.rid, "skipped")
                if self.fleet.board(t["board"]).online]
        if not back:
            return 0
        self.say(f"rollout {self.rid} step {r['step']}: catching up {len(back)} boards back online")
        for bid in back:
            self.store.target(self.rid, bid, state="pending", step=r["step"])
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(self.send, back))
        took = {t["board"] for t in self.store.targets(self.rid, "installed")}
        return len(took.intersection(back))

    def health(self, r):
        for t in self.store.targets(self.rid, "installed", "healthy", "lost"):
            b = self.fleet.board(t["board"])
            hb = b.hb
            if b.presence == "lost":
                # A will also comes when the broker itself goes (or a board's link blinks):
                # lost only when it stands LOST_GRACE with the host connected to the broker.
                if t["state"] != "lost" and self.fleet.connected and time.monotonic() - max(
                        b.lost_at, self.fleet.up_at) > LOST_GRACE:
                    self.store.target(self.rid, t["board"], state="lost", detail="lost its link")
                continue
            if t["state"] == "lost":
                if not b.online:
                    continue
                self.store.target(self.rid, t["board"], state="installed", detail="back online")
            if not isinstance(hb.get("seq"), int) or hb["seq"] < r["seq"]:
                continue  # no heartbeat since the install yet
            now = {k: hb.get(k) for k in ("crashes", "restarts", "boot")}
            if not t["base"]:
                self.store.target(self.rid, t["board"], base=json.dumps(now))
                continue
            base = json.loads(t["base"])
            worse = [k for k in now if isinstance(now[k], int) and isinstance(base.get(k), int)
                     and now[k] > base[k]]
            if worse:
                self.store.target(self.rid, t["board"], state="crashed", detail="%s went up" %
                                  ", ".join(f"{k} {base[k]} -> {now[k]}" for k in worse))

    # ----- the rule, the halt, the rollback ---------------------------------------------
    def check(self, r, rollback) -> bool:
        sent = [t["state"] for t in self.store.targets(self.rid)
                if t["state"] not in ("idle", "pending", "sending", "skipped")]
        c = R.counts(sent)
        c["failed"] += c["refused"]  # a board that did not take it, for whatever reason
        why = R.breach(self.rule, c)
        if why is None:
            return False
        stage = "canary" if r["step"] == 0 else f"step {r['step']}"
        if not self.store.move(self.rid, ("running", "soaking"), state="halted",
                               reason=f"{stage}: {why}"):
            return True  # halted from outside meanwhile: the operator decides what comes next
        self.say(f"rollout {self.rid} halted at the {stage}: {why}")
        if rollback:
            self.rollback()
        return True

    def rollback(self) -> int:
        """Send every board that took the release a signed rollback of its modules."""
        from ..ota import keys, pack

        r = self.store.rollout(self.rid)
        took = self.store.targets(self.rid, *TOOK)
        if not took:  # it stays halted: nothing runs the release
            self.say(f"rollout {self.rid}: no board took the release: nothing to roll back")
            return 0
        if self.key is None:
            raise CliError("rolling back needs the signing key: give --key")
        key = keys.load_private(self.key)
        seq = max(r["seq"], r["rollback_seq"] or 0)
        mods = json.loads(r["modules"])
        boxes = [pack.assemble({"v": 1, "type": "rollback", "board": r["board"], "seq": seq + 1 + i,
                                "module": m}, b"", key).to_bytes() for i, m in enumerate(mods)]
        self.store.set(self.rid, rollback_seq=seq + len(mods))
        done = 0
        for t in took:
            said = self.undo(t["board"], boxes)
            ok = said is None
            done += ok
            self.store.target(self.rid, t["board"], state="rolledback" if ok else "rollback-failed",
                              detail=said)
        self.store.set(self.rid, state="rolled-back")
        self.say(f"rollout {self.rid}: rolled back {done} of {len(took)} boards that took it")
        return done

    def undo(self, bid, boxes):
        for box in boxes:
            try:
                res = deliver(self.fleet, bid, box)
            except TimeoutError as e:
                return str(e)
            if not res.get("ok"):
                return str(res.get("said"))
        return None
