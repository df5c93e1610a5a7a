# The part file of a push in progress and what it belongs to (size and digest, in META):
# synced at every acknowledgement, so a cut link or a reset resumes from the last
# acknowledged byte. (Its own module: a Pico compiles receive.py and this apart.)
import hashlib
import os
from time import ticks_ms
from outstack.ota import slots

DIR = "/.outstack/ota"
PART = DIR + "/incoming.part"
META = DIR + "/incoming.meta"
PACKAGE = DIR + "/incoming.pkg"  # complete and checked: what the installer reads


def free_for():
    """Flash a new push may use: what is free, and any part file (it gives way to the push)."""
    st = os.statvfs("/")
    try:
        part = os.stat(PART)[6]
    except OSError:
        part = 0
    return st[0] * st[3] + part


class Store:
    # The part file and what it belongs to (size and digest, in META).
    def __init__(self):
        self.f = None  # the open part file while a push is in progress
        self.h = hashlib.sha256()
        self.size = 0
        self.have = 0
        self.digest = b""
        self.moved = ticks_ms()  # of the last byte taken: a push that stops moving is stale

    def resume(self, size, digest):
        slots.makedirs(DIR)
        meta = "%d %s" % (size, bytes(digest).hex())
        try:
            with open(META) as m:
                same = m.read() == meta
            have = os.stat(PART)[6] if same else 0
        except OSError:
            same, have = False, 0
        self.h = hashlib.sha256()
        if same and have <= size:
            self._rehash(have)
        else:
            have = 0
            with open(META, "w") as m:
                m.write(meta)
            open(PART, "wb").close()
        self.f = open(PART, "ab")
        self.size, self.have, self.digest = size, have, bytes(digest)
        return have

    def _rehash(self, n):
        buf = bytearray(512)
        with open(PART, "rb") as f:
            while n:
                k = f.readinto(memoryview(buf)[: min(n, 512)])
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
        os.rename(PART, PACKAGE)
        os.remove(META)
        return None

    def close(self):
        f, self.f = self.f, None
        if f is not None:
            f.flush()
            f.close()

    def discard(self):
        self.close()
        for p in (PART, META):
            try:
                os.remove(p)
            except OSError:
                pass
