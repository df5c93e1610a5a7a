"""`fleet ls`: the fleet at a glance, from the retained messages alone."""

from collections import Counter


def matrix(fleet) -> list[str]:
    """Lines: presence counts, then one line per (version set, presence, health) with its count."""
    boards = list(fleet.boards.values())
    if not boards:
        return ["no boards have announced themselves on this broker"]
    presence = Counter(b.presence for b in boards)
    lines = [f"{len(boards)} boards: " + ", ".join(f"{n} {p}" for p, n in sorted(presence.items()))]
    rows = Counter((version(b), b.presence, health(b)) for b in boards)
    width = max(len(v) for v, _, _ in rows)
    lines.append(f"{'count':>5}  {'release':<{width}}  {'presence':<8}  health")
    for (v, p, h), n in sorted(rows.items(), key=lambda r: (-r[1], r[0])):
        lines.append(f"{n:>5}  {v:<{width}}  {p:<8}  {h}")
    return lines


def version(b) -> str:
    hb = b.hb or {}
    seq = hb.get("seq", b.state.get("seq", "?"))
    mods = hb.get("versions")
    mods = mods if isinstance(mods, dict) else {}
    named = ",".join(f"{m}={v}" for m, v in sorted(mods.items()) if isinstance(v, str))
    return f"seq {seq}" + (f" ({named})" if named else " (as deployed)")


def health(b) -> str:
    hb = b.hb or {}
    if not hb:
        return "no heartbeat"
    said = [f"{hb[k]} {k}" for k in ("crashes", "restarts") if isinstance(hb.get(k), int) and hb[k]]
    if isinstance(hb.get("reset"), str) and hb["reset"] not in ("PWRON", "SOFT"):
        said.append(f"reset {hb['reset']}")
    return ", ".join(said) or "healthy"
