# An update arriving over MQTT in chunks: offered (size and SHA-256), written in order to a
# part file of its own (a UART/TCP push keeps its own), resumed after a cut link or a reset,
# checked whole, then handed to the OTA installer. The broker is not trusted: the signature
# inside the package decides; size and digest here only say the bytes arrived intact.
import hashlib
import json
import os
from binascii import hexlify
from micropython import const
from outstack.ota import slots

DIR = "/.outstack/fleet"
PART = DIR + "/in.part"
META = DIR + "/in.meta"
PACKAGE = DIR + "/in.pkg"
CHUNK_MAX = const(2048)  # data bytes in one chunk frame
ACK_EVERY = const(4096)  # the board says how far it is every this many bytes
_SHA_HEX = const(64)


class Transfer:
    def __init__(self, max_size):
        self.max_size = max_size
        self.f = None  # the open part file while an update is arriving
        self.h = hashlib.sha256()
        self.size = self.have = 0
        self.sha = ""

    def offer(self, payload):
        """An `O` frame. Returns None (taken: ack from `have`) or why it was refused."""
        try:
            o = json.loads(payload)
            size, sha = o["size"], o["sha"]
        except (ValueError, KeyError, TypeError):
            return "malformed offer"
        if not isinstance(size, int) or not isinstance(sha, str) or len(sha) != _SHA_HEX:
            return "malformed offer"
        if not 0 < size <= self.max_size:
            return "update of %d bytes is over the %d-byte limit" % (size, self.max_size)
        self.close()
        if size > _free():
            return "update of %d bytes does not fit: %d bytes of flash free" % (size, _free())
        self._open(size, sha)
        return None

    def _open(self, size, sha):
        slots.makedirs(DIR)
        meta = "%d %s" % (size, sha)
        try:
            with open(META) as m:
                same = m.read() == meta
            have = os.stat(PART)[6] if same else 0
        except OSError:
            have = 0
        self.h = hashlib.sha256()
        if have and have <= size:
            _rehash(self.h, have)
        else:
            have = 0
            with open(META, "w") as m:
                m.write(meta)
            open(PART, "wb").close()
        self.f = open(PART, "ab")
        self.size, self.have, self.sha = size, have, sha

    def chunk(self, payload):
        """A `C` frame: True when the host should hear `have` (progress, a gap, the end)."""
        if self.f is None or len(payload) < 5 or len(payload) - 4 > CHUNK_MAX:
            return False
        at = int.from_bytes(payload[:4], "big")
        n = len(payload) - 4
        if at != self.have or at + n > self.size:
            return at > self.have  # a gap: say where we are; a duplicate: already here
        data = memoryview(payload)[4:]
        self.f.write(data)
        self.h.update(data)
        before, self.have = self.have, self.have + n
        if self.have == self.size or before // ACK_EVERY != self.have // ACK_EVERY:
            self.f.flush()  # on flash before we say so
            return True
        return False

    @property
    def complete(self):
        return self.f is not None and self.have == self.size

    def finish(self):
        """The whole update as a file for the installer, or raise ValueError saying why not."""
        f, self.f = self.f, None
        if f is None:
            raise ValueError("no update in progress")
        f.close()
        if hexlify(self.h.digest()).decode() != self.sha:
            self.discard()
            raise ValueError("update SHA-256 does not match the offer: discarded")
        os.rename(PART, PACKAGE)
        os.remove(META)
        return PACKAGE

    def close(self):
        f, self.f = self.f, None
        if f is not None:
            f.close()

    def discard(self):
        self.close()
        self.size = self.have = 0
        for p in (PART, META):
            try:
                os.remove(p)
            except OSError:
                pass


def _free():
    st = os.statvfs("/")
    try:
        part = os.stat(PART)[6]
    except OSError:
        part = 0
    return st[0] * st[3] + part


def _rehash(h, n):
    buf = bytearray(512)
    with open(PART, "rb") as f:
        while n:
            k = f.readinto(memoryview(buf)[: min(n, 512)])
            if not k:
                return
            h.update(memoryview(buf)[:k])
            n -= k
