"""`outstack fleet serve`: the fleet and its rollouts in a browser (aiohttp), live through
server-sent events. Every request needs the token; halt, resume and roll back go through
fleet/actions.py and rollout.Engine, as the CLI's do, and are logged with who asked."""

import asyncio
import hmac
import json
import sqlite3
import threading
import time
import traceback
from collections import Counter, deque
from pathlib import Path

from aiohttp import web

from ..errors import CliError
from . import actions
from .ls import health
from .rollout import Engine
from .store import Store
from .view import Fleet

WEB = Path(__file__).parent / "web"
HISTORY = 120  # heartbeats kept per board for its chart
TICK = 0.5  # seconds between looks for a change to push
COOKIE = "outstack_token"
ACTS = ("halt", "resume", "rollback")


class Watched(Fleet):
    """The fleet view, also keeping each board's recent heartbeats with their arrival time."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.beats: dict[str, deque] = {}

    def _on_message(self, client, userdata, msg):
        super()._on_message(client, userdata, msg)
        parts = msg.topic.split("/")
        if len(parts) == 3 and parts[2] == "hb":
            with self.cond:
                b = self.boards.get(parts[1])
                if b is not None and b.hb:
                    hb = b.hb
                    self.beats.setdefault(b.id, deque(maxlen=HISTORY)).append(
                        {"t": time.time(), **{k: hb.get(k) for k in
                                              ("free", "crashes", "restarts", "boot", "up",
                                               "reset", "seq")}})


def board_row(fleet, b) -> dict:
    hb = b.hb or {}
    mods = hb.get("versions") if isinstance(hb.get("versions"), dict) else {}
    beats = fleet.beats.get(b.id)
    return {"id": b.id, "presence": b.presence, "seq": hb.get("seq", b.state.get("seq")),
            "versions": {m: v for m, v in sorted(mods.items()) if isinstance(v, str)},
            "restarts": hb.get("restarts"), "crashes": hb.get("crashes"), "free": hb.get("free"),
            "boot": hb.get("boot"), "reset": hb.get("reset"), "up": hb.get("up"),
            "last": beats[-1]["t"] if beats else None, "health": health(b)}


def rollout_row(store, r) -> dict:
    steps = json.loads(r["steps"])
    per = {}
    for t in store.targets(r["id"]):
        per.setdefault(str(t["step"] if t["step"] is not None else "-"), Counter())[t["state"]] += 1
    return {"id": r["id"], "package": Path(r["package"]).name, "seq": r["seq"],
            "state": r["state"], "step": r["step"], "canary": r["canary"], "steps": steps,
            "rule": r["rule"], "reason": r["reason"], "soak": r["soak"],
            "modules": json.loads(r["modules"]), "per_step": {k: dict(v) for k, v in per.items()}}


class Dashboard:
    def __init__(self, fleet: Watched, db: Path, token: str, key=None):
        self.fleet, self.db, self.token, self.key = fleet, db, token, key
        self.store = Store(db)
        self.lock = threading.Lock()  # one SQLite connection, used from the loop and threads
        self.clients: set[asyncio.Queue] = set()
        self.last: dict = {}
        self.sent_sizes: list[int] = []
        self.busy: dict[int, str] = {}  # rollout id -> what a thread of ours is doing to it

    # ----- what the page shows -------------------------------------------------------------
    def snapshot(self) -> dict:
        with self.fleet.cond:
            boards = {b.id: board_row(self.fleet, b) for b in self.fleet.boards.values()}
        with self.lock:
            rollouts = {str(r["id"]): rollout_row(self.store, r) for r in self.store.all()}
            log = actions.history(self.store, 30)
        for rid, what in list(self.busy.items()):  # a thread of ours may end meanwhile
            if str(rid) in rollouts:
                rollouts[str(rid)]["busy"] = what
        return {"boards": boards, "rollouts": rollouts, "actions": log}

    def delta(self, now: dict) -> dict:
        """Only what changed since the last tick: a board's changed fields, a rollout whole."""
        out: dict = {}
        old = self.last.get("boards", {})
        boards = {k: {f: v for f, v in row.items() if k not in old or old[k].get(f) != v}
                  for k, row in now["boards"].items()}
        if any(boards.values()):
            out["boards"] = {k: v for k, v in boards.items() if v}
        old = self.last.get("rollouts", {})
        rollouts = {k: v for k, v in now["rollouts"].items() if old.get(k) != v}
        if rollouts:
            out["rollouts"] = rollouts
        if now["actions"] != self.last.get("actions"):
            out["actions"] = now["actions"]
        return out

    async def pump(self):
        while True:
            await asyncio.sleep(TICK)
            try:
                now = await asyncio.to_thread(self.snapshot)
            except sqlite3.Error as e:  # a state file busy past its timeout: try next tick
                print(f"outstack: dashboard could not read {self.db}: {e}", flush=True)
                continue
            d = self.delta(now)
            self.last = now
            if d and self.clients:
                msg = json.dumps(d, separators=(",", ":"))
                self.sent_sizes.append(len(msg))
                for q in list(self.clients):
                    if q.qsize() < 100:  # a client that reads nothing is cut off, not queued for
                        q.put_nowait(msg)
                    else:
                        self.clients.discard(q)

    # ----- the operator's acts: the CLI's code path, in a thread ----------------------------
    def act(self, what: str, rid: int, who: str) -> dict:
        with self.lock:
            if what == "halt":
                return dict(actions.halt(self.store, rid, who))
            if rid in self.busy:
                raise CliError(f"rollout {rid} is busy: {self.busy[rid]}")
            r = dict((actions.resume if what == "resume" else actions.rollback)(
                self.store, rid, who))
            self.busy[r["id"]] = what
        threading.Thread(target=self._drive, args=(what, r["id"], who), daemon=True).start()
        return r

    def _drive(self, what, rid, who):
        store = Store(self.db)
        said = []
        try:
            engine = Engine(store, self.fleet, rid, self.key, say=said.append)
            if what == "resume":
                engine.run()
            else:
                engine.rollback()
        except CliError as e:
            said.append(f"{what} failed: {e}")
        except Exception as e:  # said in the log, where the operator looks: not a dead thread
            said.append(f"{what} failed: {e!r}")
            traceback.print_exc()
        finally:
            with self.lock:
                actions.log(self.store, who, what + " ended", rid, "; ".join(said[-3:]))
            store.close()
            self.busy.pop(rid, None)


# ----- HTTP --------------------------------------------------------------------------------
def _given(request) -> str:
    auth = request.headers.get("Authorization", "")
    return (auth[7:] if auth.startswith("Bearer ") else "") or \
        request.headers.get("X-Outstack-Token", "") or request.query.get("token", "") or \
        request.cookies.get(COOKIE, "")


@web.middleware
async def _guard(request, handler):
    dash = request.app["dash"]
    if not hmac.compare_digest(_given(request).encode(), dash.token.encode()):
        return web.Response(status=401, text="outstack: this dashboard needs its token "
                                             "(printed by `outstack fleet serve`)\n")
    try:
        return await handler(request)
    except CliError as e:
        return web.json_response({"error": str(e)}, status=409)


async def _index(request):
    resp = web.FileResponse(WEB / "index.html")
    if request.query.get("token"):  # the page's own requests carry it from now on
        resp.set_cookie(COOKIE, request.query["token"], httponly=True, samesite="Strict")
    return resp


async def _static(request):
    name = request.match_info["name"]
    if name not in ("app.js", "style.css"):
        raise web.HTTPNotFound()
    return web.FileResponse(WEB / name)


async def _state(request):
    return web.json_response(await asyncio.to_thread(request.app["dash"].snapshot))


async def _board(request):
    dash, bid = request.app["dash"], request.match_info["id"]
    with dash.fleet.cond:
        b = dash.fleet.boards.get(bid)
        if b is None:
            raise web.HTTPNotFound(text=f"no board {bid} on this broker")
        row = board_row(dash.fleet, b)
        beats = list(dash.fleet.beats.get(bid, ()))
        result = dict(b.result)
        reports = list(reversed(b.reports))  # newest first
    with dash.lock:
        updates = [dict(t, package=Path(t["package"]).name) for t in dash.store.board_targets(bid)]
    crashes = [{"t": n["t"], "what": ", ".join(f"{k} {p[k]} -> {n[k]}" for k in
                                               ("crashes", "restarts", "boot")
                                               if isinstance(n[k], int) and isinstance(p[k], int)
                                               and n[k] > p[k]), "reset": n["reset"]}
               for p, n in zip(beats, beats[1:])
               if any(isinstance(n[k], int) and isinstance(p[k], int) and n[k] > p[k]
                      for k in ("crashes", "restarts", "boot"))]
    return web.json_response({"board": row, "beats": beats, "crashes": crashes,
                              "reports": reports, "result": result, "updates": updates})


async def _events(request):
    dash = request.app["dash"]
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    q: asyncio.Queue = asyncio.Queue()
    dash.clients.add(q)
    try:
        first = dash.last or await asyncio.to_thread(dash.snapshot)
        await resp.write(b"event: snap\ndata: " + json.dumps(first).encode() + b"\n\n")
        while q in dash.clients:
            try:
                msg = await asyncio.wait_for(q.get(), 15)
                await resp.write(b"event: delta\ndata: " + msg.encode() + b"\n\n")
            except asyncio.TimeoutError:
                await resp.write(b": still here\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        dash.clients.discard(q)
    return resp


async def _act(request):
    dash, what = request.app["dash"], request.match_info["what"]
    if what not in ACTS:
        raise web.HTTPNotFound()
    if request.content_type != "application/json":  # a form from another site cannot send it
        return web.json_response({"error": "send JSON {\"who\": NAME}"}, status=415)
    try:
        body = await request.json()
        rid = int(request.match_info["id"])
    except (ValueError, TypeError):
        return web.json_response({"error": "send JSON {\"who\": NAME}"}, status=400)
    who = str(body.get("who") or "").strip()[:60] if isinstance(body, dict) else ""
    if not who:
        return web.json_response({"error": "say who you are (the name field)"}, status=400)
    r = await asyncio.to_thread(dash.act, what, rid, f"{who} (web {request.remote})")
    return web.json_response({"ok": True, "rollout": r["id"], "state": r["state"]})


def app(dash: Dashboard) -> web.Application:
    a = web.Application(middlewares=[_guard], client_max_size=4096)
    a["dash"] = dash
    a.router.add_get("/", _index)
    a.router.add_get("/static/{name}", _static)
    a.router.add_get("/api/state", _state)
    a.router.add_get("/api/board/{id}", _board)
    a.router.add_get("/events", _events)
    a.router.add_post("/api/rollout/{id}/{what}", _act)
    return a


async def serve(dash: Dashboard, host: str, port: int, ready) -> None:
    runner = web.AppRunner(app(dash), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        raise CliError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    ready(runner.addresses[0][1])
    pump = asyncio.create_task(dash.pump())
    try:
        await asyncio.Event().wait()
    finally:
        pump.cancel()
        await runner.cleanup()
