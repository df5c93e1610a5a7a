# NOR flash model behind the board's LittleFS: erase sets a block to 0xFF, program can only
# clear bits, and a power cut can land inside any erase or program (a torn operation).
from micropython import const
import _hw

_PAGE = const(256)  # program granularity of the QSPI flash on a Pico (W25Q16JV data sheet)
_ERASED = b"\xff" * _PAGE


class Flash:
    def __init__(self, f, block_size, block_count, cut_after=0, cut_pages=0, trace=False):
        self.f = f
        self.bs = block_size
        self.n = block_count
        self.ops = 0  # erases + programs since power-on
        self.cut_after = cut_after
        self.cut_pages = cut_pages
        self.trace = trace
        self._old = bytearray(_PAGE)

    def readblocks(self, block, buf, off=0):
        self.f.seek(block * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, off=None):
        if off is None:
            self._erase(block)
            off = 0
        self._program(block * self.bs + off, memoryview(buf))

    def ioctl(self, op, arg):
        if op == 4:
            return self.n
        if op == 5:
            return self.bs
        if op == 6:
            self._erase(arg)
        return 0

    def _count(self):
        # Returns how many pages this operation completes before power goes, or None.
        self.ops += 1
        if self.trace:
            _hw.tell("w %d" % self.ops)
        if self.cut_after and self.ops == self.cut_after:
            return self.cut_pages
        return None

    def _cut(self):
        _hw.tell("cut %d" % self.ops)
        _hw.halt()

    def _erase(self, block):
        left = self._count()
        base = block * self.bs
        for p in range(0, self.bs, _PAGE):
            if left == 0:
                self._cut()
            self.f.seek(base + p)
            self.f.write(_ERASED[: min(_PAGE, self.bs - p)])
            if left is not None:
                left -= 1
        if left is not None:
            self._cut()

    def _program(self, pos, data):
        left = self._count()
        for i in range(0, len(data), _PAGE):
            if left == 0:
                self._cut()
            chunk = data[i : i + _PAGE]
            self.f.seek(pos + i)
            n = self.f.readinto(self._old)
            old = self._old if n == _PAGE else self._old[:n]
            if old[: len(chunk)] != _ERASED[: len(chunk)]:
                chunk = bytes(a & b for a, b in zip(old, chunk))  # NOR can only clear bits
            self.f.seek(pos + i)
            self.f.write(chunk)
            if left is not None:
                left -= 1
        if left is not None:
            self._cut()
