# Device tests of the forgiving config: every server of the table runs unless disabled,
# spec fields are set per server by name (nested trees too), and a bad setting is one line
# naming the server and the field while the firmware's value runs.
import asyncio
import json
from outstack.system import System
from outstack.server import Server
from outstack.spec import Spec
from outstack.supervisor import Supervisor


class S(Server):
    def init(self, cfg, state):
        self.cfg = cfg

    def handle_call(self, msg, arg):
        return self.cfg


def table():
    # Made per test: a nested supervisor is an object its System configures in place.
    inner = Supervisor([Spec("x", S, config={"rate": 1}), Spec("y", S)], name="inner")
    return {"a": {"factory": S, "config": {"rate": 1}},
            "b": {"factory": S, "priority": 2},
            "inner": {"factory": inner}}


async def boot(cfg, tbl=None):
    with open("/t.json", "w") as f:
        f.write(json.dumps(cfg))
    s = System(tbl or table(), config_path="/t.json").boot()
    await asyncio.sleep_ms(5)
    return s


def running(s):
    return sorted(n for n, p in s.kernel.names.items() if p.alive)


async def test_servers_missing_from_the_config_run_and_enabled_false_stops_one():
    s = await boot({"servers": {"a": {}}})
    assert running(s) == ["a", "b", "x", "y"], running(s)
    assert s.errors == []
    s = await boot({"servers": {"b": {"enabled": False}, "y": {"enabled": False}}})
    assert running(s) == ["a", "x"], running(s)
    s = await boot({"servers": {"inner": {"enabled": False}}})
    assert running(s) == ["a", "b"], running(s)


async def test_spec_fields_are_set_from_the_config():
    s = await boot({"servers": {"a": {"priority": 3, "inbox": 2, "restart": "transient",
                                      "mem_limit": 5000, "watchdog_ms": 700, "record": 4,
                                      "budget_us": 123, "rate": 9}}})
    assert s.errors == [], s.errors
    p = s.kernel.names["a"]
    assert (p.priority, p.inbox.size, p.budget_us) == (3, 2, 123)
    sp = p.spec
    assert (sp.restart, sp.mem_limit, sp.watchdog_ms, sp.record) == ("transient", 5000, 700, 4)
    assert p.watch is not None and p.watch.ring.size == 4  # recording from its start
    c = s.kernel.client("a")
    await c.call("cfg")
    assert c.value == {"rate": 9}  # what is not a spec field still goes to init
    assert s.kernel.names["b"].priority == 2  # the table's value where the config says nothing


async def test_nested_trees_are_configured_by_name():
    s = await boot({"servers": {"x": {"priority": 0, "inbox": 3, "rate": 5},
                                "inner": {"strategy": "one_for_all", "intensity": 9,
                                          "period_ms": 800, "restart": "transient"}}})
    assert s.errors == [], s.errors
    x = s.kernel.names["x"]
    assert (x.priority, x.inbox.size) == (0, 3)
    c = s.kernel.client("x")
    await c.call("cfg")
    assert c.value == {"rate": 5}
    inner = s.top.find("inner").sup
    assert (inner.strategy, inner.intensity, inner.period_ms) == ("one_for_all", 9, 800)
    assert s.top.find("inner").spec.restart == "transient"



def test_a_tree_configured_again_starts_from_the_firmware_values():
    # The System configures twice when it falls back to the defaults: nothing may stick.
    from outstack import config

    t = table()
    inner = t["inner"]["factory"]
    config.select(t, {"servers": {"x": {"priority": 3}, "y": {"enabled": False},
                                  "inner": {"intensity": 9}}})
    assert [c.spec.name for c in inner.children] == ["x"] and inner.intensity == 9
    assert inner.children[0].spec.priority == 3
    config.select(t, {})
    assert [c.spec.name for c in inner.children] == ["x", "y"] and inner.intensity == 3
    assert inner.children[0].spec.priority == 1


BAD = (
    ("a", "priority", 9, "priority must be 0..3, not 9"),
    ("a", "inbox", "big", "inbox must be a whole number, not 'big'"),
    ("a", "restart", "sometimes", "restart must be one of permanent, transient, temporary"),
    ("b", "mem_limit", -1, "mem_limit must be"),
    ("b", "watchdog_ms", 1.5, "watchdog_ms must be a whole number"),
    ("x", "record", True, "record must be a whole number, not True"),
    ("x", "budget_us", None, "budget_us must be a whole number"),
    ("y", "strategy", "one_for_all", "strategy is a supervisor's setting"),
    ("inner", "strategy", "all_at_once", "strategy must be one of one_for_one"),
    ("inner", "intensity", "3", "intensity must be a whole number"),
    ("inner", "priority", 2, "'inner' is a supervisor: it has no setting 'priority'"),
    ("a", "rate", "fast", "setting 'rate' must be int like its default 1"),
    ("a", "enabled", "no", "enabled must be true or false"),
)


async def test_each_bad_setting_is_one_line_naming_server_and_field_and_the_defaults_run():
    servers: dict = {}
    for name, field, value, _ in BAD:
        servers.setdefault(name, {})[field] = value
    s = await boot({"servers": servers, "supervisor": {"strategy": "whatever"}})
    assert len(s.errors) == len(BAD) + 1, s.errors
    for name, field, value, said in BAD:
        hit = [e for e in s.errors if ("%r" % name) in e and said in e]
        assert len(hit) == 1, (name, field, said, s.errors)
        assert field in hit[0] and "\n" not in hit[0]
    assert [e for e in s.errors if "'top'" in e and "strategy" in e], s.errors
    assert running(s) == ["a", "b", "x", "y"]  # everything runs, with the firmware's values
    a, b, x = s.kernel.names["a"], s.kernel.names["b"], s.kernel.names["x"]
    assert (a.priority, a.inbox.size, a.spec.restart) == (1, 8, "permanent")
    assert (b.spec.mem_limit, b.spec.watchdog_ms, x.spec.record, x.budget_us) == (0, 0, 0, 20000)
    assert s.top.find("inner").sup.strategy == "one_for_one" and s.top.strategy == "one_for_one"
    c = s.kernel.client("a")
    await c.call("cfg")
    assert c.value == {"rate": 1}


async def test_the_config_errors_are_kept_for_the_crash_log():
    from outstack import crashlog

    s = await boot({"servers": {"a": {"priority": 7}}})
    kept, warn = crashlog.load_sealed(crashlog.CONFIG_ERRORS)
    assert warn is None and kept["errors"] == s.errors, (kept, s.errors)
    await boot({})
    assert crashlog.load_sealed(crashlog.CONFIG_ERRORS) == (None, None)  # a good config: gone


async def test_bad_board_settings_are_said_and_the_board_boots_without_them():
    s = await boot({"watchdog_ms": 100000000, "runaway_ms": "soon", "audit_ms": 0,
                    "safe_mode": {"crashes": 0}})
    assert running(s) == ["a", "b", "x", "y"]
    assert s.guard is None  # the watchdog above the board's limit stays off, said
    for needle in ("watchdog timeout 100000000 ms is above", "runaway_ms must be a whole number",
                   "audit_ms must be 1..", "safe_mode must be"):
        assert len([e for e in s.errors if needle in e]) == 1, (needle, s.errors)
    assert len(s.errors) == 4, s.errors


async def test_a_setting_of_the_firmware_named_like_a_field_goes_to_init():
    # The table's own setting wins: a server with a period_ms of its own gets it in init.
    tbl = {"t": {"factory": S, "config": {"period_ms": 500, "priority": "low"}}}
    s = await boot({"servers": {"t": {"period_ms": 50, "priority": "high"}}}, tbl)
    assert s.errors == [], s.errors
    c = s.kernel.client("t")
    await c.call("cfg")
    assert c.value == {"period_ms": 50, "priority": "high"}
    assert s.kernel.names["t"].priority == 1
