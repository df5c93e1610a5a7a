# Where updated modules live, and the one pointer that says which version runs.
#   /app/...                                   the module area as deployed (version 0)
#   /.outstack/ota/slot/<seq>/app/...          a whole copy of the area for version <seq>
#   /.outstack/ota/current                     "<seq> <trial|good> <previous> [<its previous>]"
#   /.outstack/ota/note                        why the last update was rolled back
# A slot is complete before the pointer names it, and one rename replaces the pointer: a
# power cut leaves the old version or the new one. A version still on trial at boot (the
# board went down before its health check passed) is rolled back.
import os
import sys

AREA = "/app"
DIR = "/.outstack/ota"
SLOTS = DIR + "/slot"
POINTER = DIR + "/current"
NOTE = DIR + "/note"


def read():
    """(seq, state, previous): (0, "good", 0) when no update was ever installed."""
    return _read()[:3]


def _read():
    try:
        with open(POINTER) as f:
            w = f.read().split()
        return int(w[0]), w[1], int(w[2]), int(w[3]) if len(w) > 3 else 0
    except (OSError, ValueError, IndexError):
        return 0, "good", 0, 0


def write(seq, state, prev, before=0):
    """`before`: the version previous to `prev`, kept while `seq` is on trial so that a
    rollback at boot restores the whole history (prev, good, before)."""
    with open(POINTER + ".new", "w") as f:
        f.write("%d %s %d %d" % (seq, state, prev, before))
    os.rename(POINTER + ".new", POINTER)  # the one atomic step of an install


def note(text):
    """Keep why the last update was rolled back (None: forget it), for `ota status`."""
    try:
        if text is None:
            os.remove(NOTE)
            return
        makedirs(DIR)
        with open(NOTE, "w") as f:
            f.write(text)
    except OSError:
        pass


def last_note():
    try:
        with open(NOTE) as f:
            return f.read()
    except OSError:
        return None


def root(seq):
    return "" if seq == 0 else "%s/%d" % (SLOTS, seq)


def use(seq):
    """Put version `seq` of the module area first on sys.path (0: the deployed one)."""
    sys.path[:] = [p for p in sys.path if not p.startswith(SLOTS)]
    if seq:
        sys.path.insert(0, root(seq))


def boot():
    """At power-up (boot.py): roll back a version that never passed its health check."""
    seq, state, prev, before = _read()
    if state == "trial":
        write(prev, "good", before)
        why = "update %d was not confirmed before the reset (cause %s): rolled back to %d" % (
            seq, _cause(), prev)
        note(why)
        print("outstack: " + why)
        seq = prev
    use(seq)
    return seq


def _cause():
    try:
        from outstack import hal

        return hal.reset_cause()
    except Exception:
        return "unknown"


def makedirs(path):
    part = ""
    for name in path.split("/")[1:]:
        part += "/" + name
        try:
            os.mkdir(part)
        except OSError:
            pass


def _copy_tree(src, dst):
    makedirs(dst)
    for entry in os.ilistdir(src):
        name, kind = entry[0], entry[1]
        if kind == 0x4000:
            _copy_tree(src + "/" + name, dst + "/" + name)
        else:
            _copy(src + "/" + name, dst + "/" + name)


def _copy(src, dst, buf=bytearray(512)):
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while True:
            n = fi.readinto(buf)
            if not n:
                return
            fo.write(memoryview(buf)[:n])


def stage(seq, base):
    """A fresh slot for version `seq`, starting as a copy of version `base`'s area."""
    remove(seq)
    _copy_tree(root(base) + AREA, root(seq) + AREA)
    return root(seq)


def remove(seq):
    if seq:
        _rmtree(root(seq))


def _rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for entry in entries:
        p = path + "/" + entry[0]
        if entry[1] == 0x4000:
            _rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def prune(keep):
    """Delete every slot but the versions in `keep` (the running one and its previous)."""
    try:
        names = [e[0] for e in os.ilistdir(SLOTS)]
    except OSError:
        return
    for name in names:
        if int(name) not in keep:
            _rmtree(SLOTS + "/" + name)
