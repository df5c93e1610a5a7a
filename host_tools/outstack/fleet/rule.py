"""The halt rule of a rollout (docs/FLEET.md):

    rule   := clause ( "or" clause )*
    clause := term ( "and" term )*
    term   := metric op number [ "%" ]
    metric := failed | refused | crashed | lost | unhealthy
    op     := > | >= | < | <= | ==

Counts are over the boards the release was sent to; with % a term compares their percentage.
"""

import operator
import re

from ..errors import CliError

METRICS = ("failed", "refused", "crashed", "lost", "unhealthy")
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
       "==": operator.eq}
TERM = re.compile(r"^\s*([a-z]+)\s*(>=|<=|==|>|<)\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")


def parse(text: str) -> list[list[tuple]]:
    """[[(metric, op, number, percent), ...], ...]: clauses joined by or, terms by and."""
    if not isinstance(text, str) or not text.strip():
        raise CliError("the halt rule is empty: say e.g. 'failed > 2% or crashed > 0'")
    out = []
    for clause in re.split(r"\s+or\s+", text.strip()):
        terms = []
        for term in re.split(r"\s+and\s+", clause):
            m = TERM.match(term)
            if not m or m[1] not in METRICS:
                raise CliError(f"halt rule {text!r}: {term.strip()!r} is not METRIC OP NUMBER[%] "
                               f"(metrics: {', '.join(METRICS)}; ops: {', '.join(OPS)})")
            terms.append((m[1], m[2], float(m[3]), m[4] == "%"))
        out.append(terms)
    return out


def counts(states: list[str]) -> dict:
    """Metric values from the targets' states (those the release was sent to)."""
    c = {m: sum(1 for s in states if s == m) for m in ("failed", "refused", "crashed", "lost")}
    c["unhealthy"] = c["crashed"] + c["lost"]
    c["sent"] = len(states)
    return c


def breach(rule: list[list[tuple]], c: dict) -> str | None:
    """The clause that holds, as text with the figures, or None."""
    for clause in rule:
        said = []
        for metric, op, number, percent in clause:
            value = 100.0 * c[metric] / c["sent"] if percent and c["sent"] else c[metric]
            if percent and not c["sent"]:
                value = 0.0
            if not OPS[op](value, number):
                break
            shown = f"{value:.1f}%" if percent else f"{int(value)}"
            said.append(f"{metric} {op} {number:g}{'%' if percent else ''} ({shown} of "
                        f"{c['sent']} boards)")
        else:
            return " and ".join(said)
    return None
