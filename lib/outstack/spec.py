# What a supervisor needs to know to run one child: how to make it, when to restart it,
# its priority and inbox, the names it may send to, and what it provides and needs.
from outstack.errors import ConfigError

_RESTARTS = ("permanent", "transient", "temporary")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")


class Spec:
    def __init__(self, name, factory, restart="permanent", priority=1, inbox=8, grants=(),
                 publishes=(), subscribes=(), provides=None, depends=(), config=None,
                 shutdown_ms=1000, budget_us=0, essential=False, handover=False, watchdog_ms=0,
                 rights=(), mem_limit=0, record=0):
        if restart not in _RESTARTS:
            raise ConfigError("%r: restart must be one of %s, not %r" % (name, _RESTARTS, restart))
        if not 0 <= priority <= 3:
            raise ConfigError("%r: priority must be 0..3, not %r" % (name, priority))
        if inbox < 1:
            raise ConfigError("%r: inbox must hold at least 1 message" % name)
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
