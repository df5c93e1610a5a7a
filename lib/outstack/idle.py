# Idle policy: what the board does when the event loop has nothing due. The default is
# asyncio's own wait in poll (WFI/WFE on bare-metal ports, a blocking poll() on the
# virtual board). LightSleep trades USB and fast wake-up for current on battery boards.
from asyncio import core  # type: ignore[attr-defined]  # internals; not in the stubs


class LightSleep:
    # Sleeps with hal.lightsleep when nothing is due for at least `min_ms` and no stream
    # is being waited on (a stream needs the CPU awake to notice its data).
    def __init__(self, min_ms=20):
        self.min_ms = min_ms
        self.slept = 0  # how many times the board went to light sleep

    def idle(self, dt, wait):
        if dt >= self.min_ms and not core._io_queue.map:
            from outstack import hal

            self.slept += 1
            hal.lightsleep(dt)
        else:
            wait(dt)


def install(policy):
    """Route asyncio's idle wait through `policy.idle(dt_ms, default_wait)`."""
    q = core._io_queue
    default = q.wait_io_event

    def wait(dt):
        if dt > 0:
            policy.idle(dt, default)
        else:
            default(dt)

    q.wait_io_event = wait
    return default
