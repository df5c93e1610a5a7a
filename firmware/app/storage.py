# Storage: appends summaries as CSV lines to a file on flash. Lines wait in a RAM batch so
# the flash sees one write per `batch` lines; past `max_bytes` the file rotates to <path>.1.
import os
from outstack.server import Server
from app.summary import HEADER, LINE_MAX, put_line


class Storage(Server):
    def init(self, config, state):
        self.path = config["path"]
        self.max_bytes = config["max_bytes"]
        self.batch = max(1, config["batch"])
        self.buf = bytearray(self.batch * LINE_MAX)  # the batch, preallocated: no str per line
        self.used = self.pending = 0
        self.lines = self.bytes = self.flushes = 0  # what reached the flash since start
        self.failed = 0  # lines lost to a failed write (said on the console, counted here)
        _makedirs(self.path)
        self.size = _size(self.path)

    def handle_cast(self, msg, arg):
        if msg != "summary":
            return super().handle_cast(msg, arg)
        self.used = put_line(self.buf, self.used, arg)
        self.pending += 1
        if self.pending >= self.batch:
            self.flush()

    def handle_call(self, msg, arg):
        if msg == "flush":
            self.flush()
        elif msg != "stats":
            return super().handle_call(msg, arg)
        return (self.lines, self.bytes, self.flushes)

    def terminate(self, reason):
        self.flush()  # an orderly stop keeps the batch; only a crash or power cut loses it

    def flush(self):
        if not self.pending:
            return
        try:
            self.write(memoryview(self.buf)[: self.used])
            self.lines += self.pending
            self.flushes += 1
        except OSError as e:
            self.failed += self.pending
            print("storage: %d lines not written to %s (%r): dropped" % (self.pending, self.path, e))
            self.log.error("%d lines not written to %s (%r): dropped", self.pending, self.path, e)
        self.used = self.pending = 0

    def write(self, data):
        if self.size and self.size + len(data) > self.max_bytes:
            self.rotate()
        with open(self.path, "ab") as f:
            if not self.size:
                self.size = self.bytes_out(f, HEADER)  # a new file says what its columns are
            self.size += self.bytes_out(f, data)

    def bytes_out(self, f, data):
        n = f.write(data)
        self.bytes += n
        return n

    def rotate(self):
        old = self.path + ".1"
        try:
            os.remove(old)
        except OSError:
            pass  # no older file yet
        os.rename(self.path, old)
        self.size = 0


def _makedirs(path):
    i = path.find("/", 1)
    while i > 0:
        try:
            os.mkdir(path[:i])
        except OSError:
            pass  # already there
        i = path.find("/", i + 1)


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0
