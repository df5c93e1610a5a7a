# The device config (/config.json): which servers run and with which settings, so one
# firmware serves several products. A bad file never stops the boot: the built-in
# defaults run and the error is reported.
import json
from outstack.errors import ConfigError

PATH = "/config.json"


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


def select(table, cfg):
    """The Specs to run: those the config lists (all of the table if it lists none) and does
    not disable, each with the table's settings overlaid by the config's."""
    from outstack.spec import Spec

    wanted = cfg.get("servers")
    if wanted is None:
        wanted = {name: {} for name in table}
    for name in wanted:
        if name not in table:
            raise ConfigError("no server %r in this firmware (it has: %s)"
                              % (name, ", ".join(sorted(table))))
    specs = []
    for name, settings in wanted.items():
        kw = dict(table[name])
        config = dict(kw.pop("config", {}))
        _check_types(name, config, settings)
        config.update(settings)
        if config.pop("enabled", True) is False:
            continue  # off in the table's defaults or in the file
        specs.append(Spec(name, kw.pop("factory"), config=config, **kw))
    return specs


def _check_types(name, defaults, settings):
    # A setting must have its default's type (an int may stand for a float): a wrong one is
    # refused here, before a server crashes on it at every start.
    for key, value in settings.items():
        want = defaults.get(key)
        if want is None or value is None or type(value) is type(want):
            continue
        if isinstance(want, float) and isinstance(value, int) and not isinstance(value, bool):
            continue
        raise ConfigError("%r: setting %r must be %s like its default %r, not %r"
                          % (name, key, type(want).__name__, want, value))
