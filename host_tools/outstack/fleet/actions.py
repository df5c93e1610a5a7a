"""What an operator does to a rollout (halt, resume, roll back), one code path for the CLI and
the dashboard; every act is logged in the state file with who did it."""

import getpass
import time

from ..errors import CliError


def find(store, rid):
    r = store.rollout(rid)
    if r is None:
        raise CliError(f"no rollout {rid}" if rid else "no rollouts yet: start one with "
                       "`outstack fleet rollout`")
    return r


def log(store, who, action, rid, said) -> None:
    store.write(("insert into actions values (?,?,?,?,?)", (time.time(), who, action, rid, said)))


def history(store, limit=50) -> list[dict]:
    return [dict(r) for r in store.read("select * from actions order by at desc limit ?",
                                        (limit,))]


def cli_user() -> str:
    try:
        return f"{getpass.getuser()} (cli)"
    except (KeyError, OSError):
        return "unknown (cli)"


def halt(store, rid, who) -> dict:
    r = find(store, rid)
    if not store.move(r["id"], ("running", "soaking"), state="halted",
                      reason=f"halted by the operator ({who})"):
        raise CliError(f"rollout {r['id']} is {find(store, rid)['state']}, not running")
    said = f"rollout {r['id']}: halted (its process stops at its next check)"
    log(store, who, "halt", r["id"], said)
    return find(store, r["id"])


def resume(store, rid, who) -> dict:
    """Make a halted rollout runnable again; the caller then drives it (rollout.Engine.run)."""
    r = find(store, rid)
    if r["state"] in ("done", "rolled-back"):
        raise CliError(f"rollout {r['id']} is {r['state']}: nothing to resume")
    if r["state"] == "halted" and not store.move(
            r["id"], ("halted",), reason=None, state="running" if r["soak_until"] is None or
            r["soak_until"] < time.time() else "soaking"):
        raise CliError(f"rollout {r['id']} changed meanwhile: it is {find(store, rid)['state']}")
    log(store, who, "resume", r["id"], f"rollout {r['id']}: resumed from {r['state']}")
    return find(store, r["id"])


def rollback(store, rid, who) -> dict:
    """Check a rollback may start; the caller then runs rollout.Engine.rollback."""
    r = find(store, rid)
    if r["state"] in ("running", "soaking"):
        raise CliError(f"rollout {r['id']} is {r['state']}: halt it first (fleet halt)")
    log(store, who, "rollback", r["id"], f"rollout {r['id']}: rollback started from {r['state']}")
    return r
