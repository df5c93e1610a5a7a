# Device tests of installing an update without a reboot: the changed server restarts on the
# new code while the others keep serving; a bad update is rolled back; a trial left by a
# reset is rolled back at boot.
import asyncio
import os
import time
from outstack.system import System
from outstack.ota import slots, install

V1 = b"""
from outstack.server import Server
class Greet(Server):
    def init(self, config, state):
        self.version = %s
        if self.version == "bad":
            raise RuntimeError("the new version dies on start")
    def handle_call(self, msg, arg):
        return self.version
"""
OTHER = b"""
from outstack.server import Server
class Other(Server):
    def handle_call(self, msg, arg):
        return arg
"""
TABLE = {"greet": {"factory": "app.otatest_greet:Greet"},
         "other": {"factory": "app.otatest_other:Other", "priority": 2}}


def _fresh():
    for p in ("/app/otatest_greet.py", "/app/otatest_other.py"):
        try:
            os.remove(p)
        except OSError:
            pass
    with open("/app/otatest_greet.py", "wb") as f:
        f.write(V1 % b'"v1"')
    with open("/app/otatest_other.py", "wb") as f:
        f.write(OTHER)
    try:
        os.remove(slots.POINTER)
    except OSError:
        pass
    slots.prune(())
    slots.use(0)


async def _call(s, name, arg=None):
    c = s.kernel.client(name)
    await c.call("x", arg)
    return c.value


async def test_update_swaps_one_server_while_another_keeps_answering():
    _fresh()
    s = System(TABLE, config_path="/none.json", repl=False).boot()
    await asyncio.sleep_ms(10)
    assert await _call(s, "greet") == "v1"
    gaps = [0, 0]  # longest gap between replies, replies
    done = []

    async def hammer():
        c = s.kernel.client("other")
        last = time.ticks_ms()
        while not done:
            await c.call("x", 1)
            now = time.ticks_ms()
            gaps[0] = max(gaps[0], time.ticks_diff(now, last))
            gaps[1] += 1
            last = now
            await asyncio.sleep_ms(1)

    t = asyncio.create_task(hammer())
    said = await install.install(s, 1, [("app/otatest_greet.py", [V1 % b'"v2"'])], health_ms=300)
    done.append(1)
    await t
    print("'other' during the update: %d replies, longest gap %d ms" % (gaps[1], gaps[0]))
    assert said.startswith("installed update 1: greet restarted"), said
    assert await _call(s, "greet") == "v2"
    assert slots.read() == (1, "good", 0)
    assert gaps[1] >= 10, gaps  # other kept serving through the swap and the health check
    await s.top.stop()


async def test_bad_update_is_rolled_back_with_the_reason():
    _fresh()
    s = System(TABLE, config_path="/none.json", repl=False).boot()
    await asyncio.sleep_ms(10)
    await install.install(s, 1, [("app/otatest_greet.py", [V1 % b'"v2"'])], health_ms=100)
    said = await install.install(s, 2, [("app/otatest_greet.py", [V1 % b'"bad"'])], health_ms=100)
    assert said.startswith("rolled back update 2:") and "greet" in said, said
    await asyncio.sleep_ms(20)
    assert await _call(s, "greet") == "v2"  # the previous version serves again
    assert slots.read() == (1, "good", 0)
    assert "2" not in [e[0] for e in os.ilistdir(slots.SLOTS)]
    await s.top.stop()


async def test_paths_outside_the_module_area_are_refused():
    from outstack import errors

    _fresh()
    s = System(TABLE, config_path="/none.json", repl=False).boot()
    for bad in ("../boot.py", "boot.py", "app/../boot.py", "lib/outstack/kernel.py"):
        try:
            await install.install(s, 5, [(bad, [b"x"])])
        except errors.OutstackError as e:
            assert "outside the module area" in str(e)
        else:
            raise AssertionError("%r accepted" % bad)
    assert slots.read()[0] == 0
    await s.top.stop()


def test_a_trial_left_by_a_reset_is_rolled_back_at_boot():
    _fresh()
    slots.stage(3, 0)
    slots.write(3, "trial", 0)
    assert slots.boot() == 0
    assert slots.read() == (0, "good", 0)


def test_a_reset_rollback_keeps_the_real_previous_version_and_says_why():
    _fresh()
    slots.write(82, "trial", 81, 80)  # 82 on trial over 81, whose previous was 80
    assert slots.boot() == 81
    assert slots.read() == (81, "good", 80)  # not (81, "good", 0): 80 is still there to go to
    why = slots.last_note()
    assert why is not None and "update 82 was not confirmed before the reset" in why, why
    assert "rolled back to 81" in why
