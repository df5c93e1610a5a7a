# How much RAM a server's state holds, estimated by walking its object graph (MicroPython
# has no per-owner heap accounting). Sizes follow MicroPython's object layouts rounded up
# to the GC's block (4 words); small ints and interned strings are free. Servers own their
# state, so a leak shows here as growth. Allocates: for the console, never per message.
import sys
from micropython import const

_W = 8 if sys.maxsize > 0xFFFFFFFF else 4  # bytes per machine word
_BLOCK = 4 * _W
_MAX_OBJECTS = const(4000)  # a walk stops here and says the figure is a lower bound
_SKIP = ("_p",)  # the server's link to its control block: not its state


def _blocks(n):
    return (n + _BLOCK - 1) // _BLOCK * _BLOCK


def _own(o):
    t = type(o)
    if t is int:
        return 0 if -(1 << 30) <= o < (1 << 30) else _blocks(3 * _W + 8)
    if t is float or t is bool or o is None:
        return 0 if t is not float else _blocks(2 * _W)
    if t is str or t is bytes:
        return _blocks(4 * _W + len(o) + 1) if len(o) > 10 else 0
    if t is bytearray:
        return _blocks(4 * _W) + _blocks(len(o))
    if t is list:
        return _blocks(4 * _W) + _blocks(len(o) * _W)
    if t is tuple:
        return _blocks((2 + len(o)) * _W)
    if t is dict or t is set:
        return _blocks(4 * _W) + _blocks(2 * _W * len(o) + 2 * _W)
    return _blocks(3 * _W)  # an instance; its __dict__ is walked below


_LEAF = (int, float, bool, str, bytes, bytearray, type(None))


def _items(items, stack):
    # Leaves are counted here, not walked: a list of 10,000 numbers costs no RAM to measure.
    n = 0
    for x in items:
        if type(x) in _LEAF:
            n += _own(x)
        else:
            stack.append(x)
    return n


def size_of(root):
    """(bytes, complete): the estimated size of everything reachable from `root`."""
    from outstack.server import Proc, Server, Subscription
    from outstack.client import Client
    from outstack.kernel import Kernel
    from outstack.spec import Spec

    # What the framework shares (kernel, control blocks, specs, modules) is nobody's state:
    # the walk stops there, so a kept Timer costs its own few words, not the kernel's.
    shared = (Proc, Kernel, Spec, Subscription, type(sys))

    seen: set = set()
    stack = [root]
    total = 0
    while stack:
        o = stack.pop()
        i = id(o)
        if i in seen:
            continue
        if len(seen) >= _MAX_OBJECTS:
            return total, False
        seen.add(i)
        if isinstance(o, shared):
            continue
        total += _own(o)
        t = type(o)
        if t is list or t is tuple or t is set:
            total += _items(o, stack)
        elif t is dict:
            total += _items(o.keys(), stack) + _items(o.values(), stack)
        elif isinstance(o, Client) or callable(o):
            continue  # other servers' handles and code are not this server's state
        else:
            d = getattr(o, "__dict__", None)
            if d is not None:
                total += _own(d)
                for k, v in d.items():
                    if not (k in _SKIP and isinstance(o, Server)):
                        stack.append(v)
    return total, True
