"""`outstack replay (--port PORT | --record FILE) [--server NAME]`: reproduce a recorded
server crash on the virtual board. The record (messages since a known state, that state,
the config, the traceback) comes from the board's console or a saved file; a fresh virtual
board with the same firmware runs the same server code on it (outstack.debug.replay), and
the two tracebacks are compared. Exit 0: reproduced; 1: not (or it could not run)."""

import json
import re
import tempfile
import time
from pathlib import Path

from .. import image
from ..errors import CliError
from ..project import find

DRIVER = "from outstack.debug.replay import main\nmain()\n"
REPLAY_HEAP = 4 << 20  # the record is held whole beside the server: not a board's limit to play


def run(args):
    rec = _record(args)
    name = rec["server"]
    if args.save:
        Path(args.save).write_text(json.dumps(rec, indent=1))
        print(f"record of {name!r} saved to {args.save}")
    if "msgs" not in rec:
        raise CliError(f"the crash record of {name!r} holds no messages: switch recording on "
                       f"(`outstack console --port PORT record {name} 256`) and let it crash again")
    firmware = Path(args.firmware) if args.firmware else find(args.project).firmware
    if not firmware.is_dir():
        raise CliError(f"firmware folder {firmware} does not exist")
    n = len(rec["msgs"])
    since = "its start" if rec.get("state", "None") == "None" else "its last checkpoint (save())"
    if rec.get("lost"):
        since = "the oldest one still recorded"
    print(f"replaying {name!r} ({rec['factory']}): {n} messages since {since}, "
          f"{rec.get('seen', n)} recorded on the board")
    if not rec.get("exact", True):
        print(f"  note: {rec.get('lost', 0)} earlier messages were no longer in the ring and "
              f"{name!r} has no save() to checkpoint: the replay may differ")
    got = replay_on_virtual_board(rec, firmware)
    return report(rec, got)


def _record(args) -> dict:
    if args.record:
        try:
            rec = json.loads(Path(args.record).read_text())
        except (OSError, ValueError) as e:
            raise CliError(f"cannot read crash record {args.record}: {e}") from None
        if not isinstance(rec, dict) or "server" not in rec or "factory" not in rec:
            raise CliError(f"{args.record} is not a server crash record (no server/factory)")
        if args.server and args.server != rec["server"]:
            raise CliError(f"{args.record} is the record of {rec['server']!r}, not {args.server!r}")
        return rec
    from ..console import BoardError, ask, connect

    ch = connect(args.port)
    try:
        kept = ask(ch, "crashes")["servers"]
        if not kept:
            raise CliError(f"the board on {args.port} keeps no server crash record: switch "
                           f"recording on for a server (`outstack console --port {args.port} "
                           f"record NAME 256`) and wait for it to crash")
        name = _choose(kept, args.server)
        return ask(ch, f"recording {name}", timeout=120)
    except BoardError as e:
        raise CliError(f"the board would not give its crash record: {e}") from None
    finally:
        ch.close()


def _choose(recs: dict, name: str | None) -> str:
    if name is None:
        if len(recs) > 1:
            raise CliError(f"records of several servers are kept ({', '.join(sorted(recs))}): "
                           f"choose one with --server")
        return next(iter(recs))
    if name not in recs:
        raise CliError(f"no crash record of {name!r}; kept: {', '.join(sorted(recs)) or 'none'}")
    return name


def replay_on_virtual_board(rec: dict, firmware: Path, timeout: float = 120.0) -> dict:
    from ..sim import VirtualBoard

    with tempfile.TemporaryDirectory(prefix="outstack-replay-") as tmp:
        tmp = Path(tmp)
        (tmp / "replay.json").write_text(json.dumps(rec))
        (tmp / "main.py").write_text(DRIVER)
        files = [f for f in image.layout("unix", firmware) if f[1] not in ("/main.py",)]
        files += [(str(tmp / "main.py"), "/main.py"), (str(tmp / "replay.json"), "/replay.json")]
        img = tmp / "flash.img"
        image.build(img, "unix", files)
        vb = VirtualBoard(img, "unix", heap=REPLAY_HEAP)
        try:
            vb.start()
            end = time.monotonic() + timeout
            while True:
                text = vb.output.decode(errors="replace")
                m = re.search("\x1eREPLAY(.*?)\x1f", text, re.S)
                if m:
                    return json.loads(m.group(1))
                if time.monotonic() > end:
                    raise CliError(f"the replay did not finish within {timeout:g} s:\n{text[-800:]}")
                time.sleep(0.05)
        finally:
            vb.stop()


def handler_frames(tb: str) -> list[str]:
    """The traceback from the handler down (the dispatcher's frames above it differ between
    the board and the replay), with file names as the board or the replay loaded them."""
    lines = [re.sub(r'File "/?', 'File "', line.strip()) for line in tb.strip().splitlines()]
    # where the server's own code was entered: a handler (run_handler), or init (from the
    # supervisor's _start on the board, from replay() in the replay)
    entry = re.compile(r"in (run_handler|_start|replay)$")
    cut = max((i for i, line in enumerate(lines) if entry.search(line)), default=0)
    return lines[cut + 1:]


def report(rec: dict, got: dict) -> int:
    if "error" in got and "crashed_at" not in got:
        raise CliError(f"replay failed: {got['error']}")
    if got["crashed_at"] is None:
        print(f"not reproduced: all {got['fed']} messages were handled without a crash")
        print("board traceback:")
        print("\n".join("  " + line for line in rec["tb"].splitlines()))
        return 1
    at = got["crashed_at"]
    where = "in init" if at < 0 else f"at message {at + 1} of {len(rec['msgs'])}"
    print(f"crashed {where}: {got['error']}")
    print("\n".join("  " + line for line in got["tb"].splitlines()))
    if handler_frames(got["tb"]) == handler_frames(rec["tb"]):
        print("reproduced: the same traceback as on the board, from the handler down")
        return 0
    print("not reproduced: the board's traceback was")
    print("\n".join("  " + line for line in rec["tb"].splitlines()))
    return 1
