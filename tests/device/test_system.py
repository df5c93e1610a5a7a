# Device tests of booting from a server table and /config.json.
import asyncio
import json
from outstack.system import System
from outstack.server import Server
from outstack import config, errors

STARTED = []


class S(Server):
    def init(self, cfg, state):
        self.cfg = cfg
        STARTED.append(self.name)

    def handle_call(self, msg, arg):
        return self.cfg


TABLE = {
    "a": {"factory": S, "config": {"rate": 1}},
    "b": {"factory": S, "depends": ("a",)},
    "c": {"factory": S},
}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


async def boot(text, defaults=None):
    STARTED.clear()
    write("/t.json", text)
    s = System(TABLE, config_path="/t.json", defaults=defaults).boot()
    await asyncio.sleep_ms(5)
    return s


async def test_config_selects_servers_and_settings():
    s = await boot(json.dumps({"servers": {"a": {"rate": 5}, "c": {"enabled": False}, "b": {}}}))
    assert STARTED == ["a", "b"], STARTED
    c = s.kernel.client("a")
    await c.call("cfg")
    assert c.value == {"rate": 5}
    assert s.errors == []


async def test_no_server_list_runs_the_whole_table():
    await boot("{}")
    assert sorted(STARTED) == ["a", "b", "c"]


async def test_invalid_json_runs_defaults_and_says_why():
    s = await boot("{servers: ", defaults={"servers": {"a": {"enabled": False}, "b": {"enabled": False}}})
    assert STARTED == ["c"]
    assert len(s.errors) == 1 and "/t.json" in s.errors[0] and "defaults" in s.errors[0], s.errors


async def test_unknown_server_name_is_reported_and_the_rest_of_the_config_runs():
    s = await boot(json.dumps({"servers": {"a": {"rate": 4}, "nope": {}}}))
    assert sorted(STARTED) == ["a", "b", "c"]
    assert len(s.errors) == 1 and "'nope'" in s.errors[0] and "a, b, c" in s.errors[0], s.errors
    c = s.kernel.client("a")
    await c.call("cfg")
    assert c.value == {"rate": 4}


async def test_disabling_a_dependency_is_reported_and_the_dependent_does_not_run():
    s = await boot(json.dumps({"servers": {"a": {"enabled": False}}}))
    assert len(s.errors) == 1 and "'b' depends on 'a'" in s.errors[0], s.errors
    assert STARTED == ["c"]


def test_settings_must_be_objects():
    try:
        config.check({"servers": {"a": 3}})
    except errors.ConfigError as e:
        assert "'a'" in str(e)
    else:
        raise AssertionError("bad settings accepted")


async def test_setting_of_the_wrong_type_runs_its_default_and_says_which():
    s = await boot(json.dumps({"servers": {"a": {"rate": "fast"}}}))
    assert sorted(STARTED) == ["a", "b", "c"]
    assert len(s.errors) == 1, s.errors
    assert "'a': setting 'rate' must be int" in s.errors[0] and "defaults for rate" in s.errors[0]
    c = s.kernel.client("a")
    await c.call("cfg")
    assert c.value == {"rate": 1}


def test_table_can_leave_a_server_off_unless_configured():
    specs = config.select({"x": {"factory": S, "config": {"enabled": False}}, "y": {"factory": S}}, {})
    assert [sp.name for sp in specs] == ["y"]
    specs = config.select({"x": {"factory": S, "config": {"enabled": False}}},
                          {"servers": {"x": {"enabled": True}}})
    assert [sp.name for sp in specs] == ["x"]
