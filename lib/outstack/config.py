# The device config (/config.json): which servers run and with which settings, so one
# firmware serves several products. It forgives: every server of the firmware runs unless
# the file says "enabled": false, and a setting it cannot use is reported in one line
# naming the server and the field while the firmware's value runs. A file that is not
# JSON (or not an object) is reported and the built-in defaults run. Never a reset.
# Needed once per boot: the System lets go of this module once the tree is built.
import json
from outstack.errors import ConfigError
from outstack.spec import STRATEGIES

PATH = "/config.json"
# Fields /config.json may set per server: name -> (least, most) for whole numbers, or the
# choices. A wrong one is refused with its name; the firmware's value runs.
SERVER_FIELDS = {"priority": (0, 3), "inbox": (1, 1024),
                 "restart": ("permanent", "transient", "temporary"),
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


def load(path=PATH, defaults=None):
    """(config, error): the file's config, or the defaults and why the file was refused."""
    try:
        with open(path) as f:
            cfg = json.load(f)
        check(cfg)
        return cfg, None
    except OSError:
        return defaults or {}, None  # no file: the defaults are the config
    except (ValueError, ConfigError) as e:
        return defaults or {}, "%s: %s; running the built-in defaults" % (path, e)


def check(cfg):
    if not isinstance(cfg, dict):
        raise ConfigError("the config must be a JSON object")
    servers = cfg.get("servers", {})
    if not isinstance(servers, dict):
        raise ConfigError("'servers' must map server names to settings")
    for name, settings in servers.items():
        if not isinstance(settings, dict):
            raise ConfigError("settings of %r must be an object, not %r" % (name, settings))


def select(table, cfg, errors=None):
    """The Specs to run: every server of the table (nested trees configured in place) that
    neither the table nor the config disables, with the config's settings laid over the
    table's. Each refused setting adds one line to `errors`; without a list, the first
    raises ConfigError."""
    from outstack.spec import Spec

    said = [] if errors is None else errors
    wanted = cfg.get("servers") or {}
    known: set = set()
    for name, entry in table.items():
        known.add(name)
        _names(entry["factory"], known)
    for name in wanted:
        if name not in known:
            said.append("no server %r in this firmware (it has: %s); its settings are ignored"
                        % (name, ", ".join(sorted(known))))
    specs = []
    for name, entry in table.items():
        kw = dict(entry)
        factory = kw.pop("factory")
        spec = _configured(Spec(name, factory, config=dict(kw.pop("config", {})), **kw),
                           wanted, said)
        if spec is not None:
            specs.append(spec)
    specs = runnable(specs, said)
    if errors is None and said:
        raise ConfigError(said[0])
    return specs


_NUMBERS = {"watchdog_ms": (0, 1 << 30), "runaway_ms": (0, 1 << 30), "audit_ms": (1, 1 << 30)}
_SAFE = {"crashes": (1, 1000), "window_ms": (1, 1 << 30)}


def board(cfg, said):
    """The config with its board-wide settings checked: a bad one is said and dropped, so
    the firmware's default (no watchdog, safe mode after 3 crash-resets, ...) runs."""
    out = dict(cfg)
    for key in _NUMBERS:
        if key in out:
            why = check_field(_NUMBERS, key, out[key])
            if why:
                said.append("%s; running the built-in default" % why)
                del out[key]
    safe = out.get("safe_mode")
    if safe is not None:
        bad = [k for k in safe if k not in _SAFE or check_field(_SAFE, k, safe[k])] if \
            isinstance(safe, dict) else None
        if bad is None or bad:
            said.append("safe_mode must be {\"crashes\": 1..1000, \"window_ms\": ms}, not %r; "
                        "running the built-in defaults" % (safe,))
            del out["safe_mode"]
    return out


def supervisor(cfg, said):
    """The top supervisor's settings from the config's "supervisor" object, checked."""
    got = cfg.get("supervisor") or {}
    if not isinstance(got, dict):
        said.append("'supervisor' must be an object, not %r; running the built-in defaults" % got)
        return {}
    out = {}
    for key, value in got.items():
        why = _field("top", key, value, SUPERVISOR_FIELDS)
        if why:
            said.append(why)
        else:
            out[key] = value
    return out


def runnable(specs, said):
    # A server whose dependency does not run cannot run either: said, and left out.
    while True:
        provided = set()
        for s in specs:
            provided.update(s.provides)
        out = []
        for s in specs:
            missing = [d for d in s.depends if d not in provided]
            if missing:
                said.append("%r depends on %r, which no running server provides: %r does not "
                            "run either" % (s.name, missing[0], s.name))
            else:
                out.append(s)
        if len(out) == len(specs):
            return out
        specs = out


def _names(factory, known):
    sup = _sup(factory)
    if sup is not None:
        for s in sup.specs:
            known.add(s.name)
            _names(s.factory, known)


def _sup(factory):
    from outstack.supervisor import Supervisor

    return factory if isinstance(factory, Supervisor) else None


def _configured(spec, wanted, said):
    # The spec with the config's settings for it (None if disabled); nested trees too.
    settings = wanted.get(spec.name) or {}
    sup = _sup(spec.factory)
    cfg = dict(spec.config)
    on = cfg.pop("enabled", True)
    fields: dict = {}
    sup_fields: dict = {}
    for key, value in settings.items():
        if key == "enabled":
            if value is True or value is False:
                on = value
            else:
                said.append("%r: enabled must be true or false, not %r; it runs" % (spec.name, value))
            continue
        why = _setting(spec, sup, cfg, key, value)
        if why:
            said.append(why)
        elif sup is None and (key in cfg or key not in SERVER_FIELDS):
            cfg[key] = value  # for init: the firmware's own setting wins over a field's name
        elif key in SUPERVISOR_FIELDS:
            sup_fields[key] = value
        else:
            fields[key] = value
    if on is False:
        return None
    if sup is not None:
        kids = [_configured(s, wanted, said) for s in sup.specs]
        sup.configure(runnable([s for s in kids if s is not None], said), sup_fields)
    return spec.replace(config=cfg, **fields)


def _setting(spec, sup, cfg, key, value):
    # Why `key` cannot be `value` for this spec, in one line; None if it can.
    if sup is not None:
        if key == "restart":
            return _field(spec.name, key, value, SERVER_FIELDS)
        return _field(spec.name, key, value, SUPERVISOR_FIELDS)
    if key in cfg:  # a setting of the firmware's own (the demo's sensor has a period_ms)
        return _type_error(spec.name, cfg, key, value)
    if key in SUPERVISOR_FIELDS:
        return ("%r: %s is a supervisor's setting, and %r is a server; ignored"
                % (spec.name, key, spec.name))
    if key in SERVER_FIELDS:
        return _field(spec.name, key, value, SERVER_FIELDS)
    return _type_error(spec.name, cfg, key, value)


def _field(name, key, value, fields):
    if key not in fields:
        more = "" if name == "top" else ", restart, enabled"
        return "%r is a supervisor: it has no setting %r (it takes %s%s); ignored" % (
            name, key, ", ".join(fields), more)
    why = check_field(fields, key, value)
    if why:
        return "%r: %s; running the built-in defaults for %s" % (name, why, key)
    return None


def _type_error(name, defaults, key, value):
    # A setting must have its default's type (an int may stand for a float): a wrong one is
    # refused here, before a server crashes on it at every start.
    want = defaults.get(key)
    if want is None or value is None or type(value) is type(want):
        return None
    if isinstance(want, float) and isinstance(value, int) and not isinstance(value, bool):
        return None
    return ("%r: setting %r must be %s like its default %r, not %r; running the built-in "
            "defaults for %s" % (name, key, type(want).__name__, want, value, key))
