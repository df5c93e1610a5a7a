# An update arriving over MQTT in chunks: offered (size and SHA-256), written in order to a
# part file of its own (ota/store.py's Store, under the fleet's folder: a UART/TCP push keeps
# its own), resumed after a cut link or a reset, checked whole, then handed to the OTA
# installer. The broker is not trusted: the signature inside the package decides; size and
# digest here only say the bytes arrived intact.
import json
from binascii import unhexlify
from micropython import const
from outstack.ota.store import Store, free_for

BASE = "/.outstack/fleet/in"
CHUNK_MAX = const(2048)  # data bytes in one chunk frame
ACK_EVERY = const(4096)  # the board says how far it is every this many bytes
_SHA_HEX = const(64)


class Transfer:
    def __init__(self, max_size):
        self.max_size = max_size
        self.store = Store(BASE)
        self.sha = ""

    @property
    def have(self):
        return self.store.have

    @property
    def size(self):
        return self.store.size

    def offer(self, payload):
        """An `O` frame. Returns None (taken: ack from `have`) or why it was refused."""
        try:
            o = json.loads(payload)
            size, sha = o["size"], o["sha"]
            digest = unhexlify(sha) if isinstance(sha, str) and len(sha) == _SHA_HEX else None
        except (ValueError, KeyError, TypeError):
            return "malformed offer"
        if not isinstance(size, int) or digest is None:
            return "malformed offer"
        if not 0 < size <= self.max_size:
            return "update of %d bytes is over the %d-byte limit" % (size, self.max_size)
        s = self.store
        s.close()
        free = free_for(s.part)
        if size > free:
            return "update of %d bytes does not fit: %d bytes of flash free" % (size, free)
        s.resume(size, digest)
        self.sha = sha
        return None

    def chunk(self, payload):
        """A `C` frame: True when the host should hear `have` (progress, a gap, the end)."""
        s = self.store
        if s.f is None or len(payload) < 5 or len(payload) - 4 > CHUNK_MAX:
            return False
        at = int.from_bytes(payload[:4], "big")
        n = len(payload) - 4
        if at != s.have or at + n > s.size:
            return at > s.have  # a gap: say where we are; a duplicate: already here
        before = s.have
        s.write(memoryview(payload)[4:])
        if s.have == s.size or before // ACK_EVERY != s.have // ACK_EVERY:
            s.sync()  # on flash before we say so
            return True
        return False

    @property
    def complete(self):
        s = self.store
        return s.f is not None and s.have == s.size

    def finish(self):
        """The whole update as a file for the installer, or raise ValueError saying why not."""
        s = self.store
        if s.f is None:
            raise ValueError("no update in progress")
        why = s.finish()
        if why:
            raise ValueError(why)
        return s.pkg

    def close(self):
        self.store.close()

    def discard(self):
        s = self.store
        s.discard()
        s.size = s.have = 0
