# Outstack Micro: service management for MicroPython boards. The face is tiny: each name
# below loads its module on first use, so a board pays RAM only for the parts it uses.
__version__ = "0.1.0"

# Name on the face -> its module, in pairs: a constant, no dict in RAM.
_WHERE = ("Kernel", "kernel", "Server", "server", "Spec", "spec", "Supervisor", "supervisor",
          "Client", "client", "IrqRing", "irq", "System", "system")


def unload(pkg, names):
    # Let go of code a board needs only now and then: out of sys.modules and off its package
    # (or the package keeps it alive), so the GC can take it.
    import sys

    face = sys.modules.get(pkg)
    for name in names:
        if sys.modules.pop(pkg + "." + name, None) is not None and hasattr(face, name):
            delattr(face, name)


def __getattr__(name):
    # `from outstack import hal` also lands here on MicroPython: submodules load the same way.
    mod = name
    for i in range(0, len(_WHERE), 2):
        if _WHERE[i] == name:
            mod = _WHERE[i + 1]
    try:
        m = __import__("outstack." + mod, None, None, (name,))
    except ImportError as e:
        if ("outstack." + mod) not in str(e):
            raise  # the module exists, but something it imports does not
        raise AttributeError("outstack has no %r" % name)
    value = m if name == mod else getattr(m, name)
    globals()[name] = value
    return value
