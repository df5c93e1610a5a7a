# Dependencies between the modules of an update: the order to install them in, and the
# refusals (unknown dependency, a circle) that verify.Policy reports before anything changes.
from outstack.ota.verify import OtaRejected, allowed


def install_order(m, allow=("app.*",), installed=None):
    """The manifest's modules, each after those it depends on; OtaRejected("deps") if a
    dependency is unknown or they depend on one another in a circle."""
    by = {e["name"]: e for e in m["modules"]}
    if len(by) != len(m["modules"]):
        raise OtaRejected("malformed", "malformed manifest: a module is listed twice")
    out: list = []
    state: dict = {}
    for e in m["modules"]:  # in manifest order: a dict's order is not kept on MicroPython
        _visit(e["name"], by, state, out, [], allow, installed or {})
    return out


def _visit(name, by, state, out, path, allow, installed):
    if state.get(name) == 2:
        return
    if state.get(name) == 1:
        raise OtaRejected("deps", "dependency cycle: %s" % " -> ".join(path + [name]))
    state[name] = 1
    for dep in by[name]["deps"]:
        if dep in by:
            _visit(dep, by, state, out, path + [name], allow, installed)
        elif dep not in installed and not allowed(dep, allow):
            raise OtaRejected("deps", "module %r depends on %r, which is neither in this update "
                              "nor a module of this board" % (name, dep))
    state[name] = 2
    out.append(by[name])
