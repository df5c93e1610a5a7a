# Replay of a recorded crash (see outstack.debug.record): the same server code is started
# alone with the recorded config and starting state, and fed the recorded messages in order,
# each handler run as the dispatcher runs it. The servers it may send to are stand-ins that
# take anything (handlers only cast; a cast's outcome never reaches the sender). Run by the
# main.py that `outstack replay` puts on a virtual board; prints one RS JSON US line.
from outstack import errors
from outstack.kernel import Kernel
from outstack.server import Server, Proc
from outstack.spec import Spec


class Stand(Server):
    def handle_cast(self, msg, arg):
        pass

    def handle_call(self, msg, arg):
        return None


class Unreplayable(Exception):
    pass


def _rebuild(text, what):
    try:
        return eval(text, {})
    except Exception as e:
        raise Unreplayable("%s %s cannot be rebuilt from what was recorded (%s: %s)"
                           % (what, text[:60], type(e).__name__, e))


def replay(rec):
    from outstack.debug.record import traceback

    mod, _, cls = rec["factory"].partition(":")
    factory = getattr(__import__(mod, None, None, (cls,)), cls)
    k = Kernel()
    stands = [Proc(k, Spec(g, Stand, inbox=64)) for g in rec.get("grants", ())]
    for s in stands:
        s.attach(Stand())
        s.queued = True  # never put on the ready list: drained by hand below
    spec = Spec(rec["server"], factory, config=rec.get("config") or {},
                grants=rec.get("grants", ()), publishes=rec.get("publishes", ()))
    p = Proc(k, spec)
    state = _rebuild(rec.get("state", "None"), "the starting state")
    server = factory()
    p.attach(server, state)
    msgs = rec.get("msgs", [])
    at = -1
    try:
        server.init(spec.config, state)
        for at in range(len(msgs)):
            kind, _, m, a = msgs[at]
            msg = _rebuild(m, "message %d" % at)
            arg = _rebuild(a, "the argument of message %d" % at)
            try:
                k.run_handler(p, p._call if kind == "call" else p._cast, msg, arg)
            except errors.BadMessage:
                pass  # refused on the board too: the server went on serving
            for s in stands:
                s.inbox.clear()
    except Unreplayable as e:
        return {"error": str(e)}
    except Exception as e:
        return _crashed(at, e, traceback)
    return {"crashed_at": None, "fed": len(msgs)}


def _crashed(at, e, traceback):
    return {"crashed_at": at, "error": "%s: %s" % (type(e).__name__, e), "tb": traceback(e)}


def main(path="/replay.json"):
    import json

    with open(path) as f:
        rec = json.load(f)
    try:
        out = replay(rec)
    except Exception as e:
        out = {"error": "replay could not start: %s: %s" % (type(e).__name__, e)}
    print("\x1eREPLAY" + json.dumps(out) + "\x1f")
