# Helpers shared by device tests (copied to the board's /lib beside _runner.py).
from outstack.server import Proc
from outstack.spec import Spec


def serve(kernel, name, cls, **spec):
    """A started server of class `cls` registered as `name`, without a supervisor."""
    p = Proc(kernel, Spec(name, cls, **spec))
    s = cls()
    p.attach(s)
    s.init({}, None)
    return p
