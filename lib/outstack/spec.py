# What a supervisor needs to know to run one child: how to make it, when to restart it,
# its priority and inbox, the names it may send to, and what it provides and needs.
from outstack.errors import ConfigError

_RESTARTS = ("permanent", "transient", "temporary")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
# Fields /config.json may set per server: name -> (least, most) for whole numbers, or the
# choices. A wrong one is refused with its name; the firmware's value runs.
SERVER_FIELDS = {"priority": (0, 3), "inbox": (1, 1024), "restart": _RESTARTS,
                 "mem_limit": (0, 1 << 30), "watchdog_ms": (0, 1 << 30),
                 "record": (0, 4096), "budget_us": (0, 1 << 30)}
# ... and per supervisor (a nested one's `restart` is its spec's, as for a server)
SUPERVISOR_FIELDS = {"strategy": STRATEGIES, "intensity": (0, 1000), "period_ms": (1, 1 << 30),
                     "backoff_ms": (0, 60000), "backoff_max_ms": (0, 600000)}


def check_field(fields, field, value):
    """Why `value` cannot be `field` (one of `fields`), or None if it can."""
    want = fields[field]
    if isinstance(want[0], str):
        if value not in want:
            return "%s must be one of %s, not %r" % (field, ", ".join(want), value)
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        return "%s must be a whole number, not %r" % (field, value)
    if not want[0] <= value <= want[1]:
        return "%s must be %d..%d, not %r" % (field, want[0], want[1], value)
    return None


class Spec:
    def __init__(self, name, factory, restart="permanent", priority=1, inbox=8, grants=(),
                 publishes=(), subscribes=(), provides=None, depends=(), config=None,
                 shutdown_ms=1000, budget_us=0, essential=False, handover=False, watchdog_ms=0,
                 rights=(), mem_limit=0, record=0):
        for field, value in (("restart", restart), ("priority", priority), ("inbox", inbox)):
            why = check_field(SERVER_FIELDS, field, value)
            if why:
                raise ConfigError("%r: %s" % (name, why))
        self.name = name
        self.factory = factory  # a Server subclass, or a Supervisor for a nested tree
        self.restart = restart
        self.priority = priority
        self.inbox = inbox
        self.grants = tuple(grants)
        self.publishes = tuple(publishes)
        self.subscribes = tuple(subscribes)
        self.provides = (name,) if provides is None else tuple(provides)
        self.depends = tuple(depends)
        self.config = config or {}
        self.shutdown_ms = shutdown_ms
        self.budget_us = budget_us
        self.essential = essential
        self.handover = handover
        self.watchdog_ms = watchdog_ms  # 0: none; else check in (Server.checkin) this often
        self.rights = tuple(rights)  # privileged acts handed out at boot: "ota", "mpu", "reset"
        self.record = record  # keep its last N messages from the start (crash record, replay)
        self.mem_limit = mem_limit  # bytes its state may hold (0: no limit), audited each second

    def replace(self, **changes):
        """A copy with some fields changed (the firmware's spec itself stays as it is)."""
        kw = {}
        for f in _COPIED:
            kw[f] = changes[f] if f in changes else getattr(self, f)
        return Spec(self.name, self.factory, **kw)


_COPIED = ("restart", "priority", "inbox", "grants", "publishes", "subscribes", "provides",
           "depends", "config", "shutdown_ms", "budget_us", "essential", "handover",
           "watchdog_ms", "rights", "mem_limit", "record")
