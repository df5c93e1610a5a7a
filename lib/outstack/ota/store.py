# The part file of a push in progress and what it belongs to (size and digest, in META):
# synced at every acknowledgement, so a cut link or a reset resumes from the last
# acknowledged byte. (Its own module: a Pico compiles receive.py and this apart.)
# A UART/TCP push keeps its files under `incoming.*`; the fleet's MQTT transfer under its own.
import hashlib
import os
from time import ticks_ms
from outstack.ota import slots

DIR = "/.outstack/ota"
PART = DIR + "/incoming.part"
META = DIR + "/incoming.meta"
PACKAGE = DIR + "/incoming.pkg"  # complete and checked: what the installer reads


def free_for(part=PART):
    """Flash a new push may use: what is free, and any part file (it gives way to the push)."""
    st = os.statvfs("/")
    try:
        part = os.stat(part)[6]
    except OSError:
        part = 0
    return st[0] * st[3] + part


class Store:
    # The part file and what it belongs to (size and digest, in META); `base` names the
    # three files (base.part, base.meta, base.pkg), in a folder of their own.
    def __init__(self, base=DIR + "/incoming"):
        self.dir = base[: base.rfind("/")]
        self.part, self.meta, self.pkg = base + ".part", base + ".meta", base + ".pkg"
        self.f = None  # the open part file while a push is in progress
        self.h = hashlib.sha256()
        self.size = 0
        self.have = 0
        self.digest = b""
        self.moved = ticks_ms()  # of the last byte taken: a push that stops moving is stale

    def resume(self, size, digest):
        slots.makedirs(self.dir)
        meta = "%d %s" % (size, bytes(digest).hex())
        try:
            with open(self.meta) as m:
                same = m.read() == meta
            have = os.stat(self.part)[6] if same else 0
        except OSError:
            same, have = False, 0
        self.h = hashlib.sha256()
        if same and have <= size:
            self._rehash(have)
        else:
            have = 0
            with open(self.meta, "w") as m:
                m.write(meta)
            open(self.part, "wb").close()
        self.f = open(self.part, "ab")
        self.size, self.have, self.digest = size, have, bytes(digest)
        return have

    def _rehash(self, n):
        buf = bytearray(512)
        with open(self.part, "rb") as f:
            while n:
                k = f.readinto(memoryview(buf)[: min(n, 512)])
                if not k:
                    return
                self.h.update(memoryview(buf)[:k])
                n -= k

    def _file(self):
        f = self.f
        if f is None:
            raise OSError("no push in progress")
        return f

    def write(self, data):
        self.moved = ticks_ms()
        self._file().write(data)
        self.h.update(data)
        self.have += len(data)

    def sync(self):
        self._file().flush()

    def finish(self):
        self._file().close()
        self.f = None
        if self.have != self.size:
            return "package is %d bytes, %d arrived" % (self.size, self.have)
        if self.h.digest() != self.digest:
            self.discard()
            return "package SHA-256 does not match what the host announced: discarded"
        os.rename(self.part, self.pkg)
        os.remove(self.meta)
        return None

    def close(self):
        f, self.f = self.f, None
        if f is not None:
            f.flush()
            f.close()

    def discard(self):
        self.close()
        for p in (self.part, self.meta):
            try:
                os.remove(p)
            except OSError:
                pass
