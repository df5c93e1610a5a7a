# Interrupt hand-off: an IRQ handler posts into a preallocated ring (no allocation, no
# asyncio: safe in a hard IRQ); the kernel moves the entries into the owning server's
# inbox as messages. A full ring counts what it lost and the server is told ("irq-lost").
import micropython


class IrqRing:
    def __init__(self, proc, size=16, msg="irq"):
        self.proc = proc
        self.msg = msg
        self.buf = [0] * size
        self.size = size
        self.head = 0  # moved only by the kernel
        self.tail = 0  # moved only by post()
        self.overflow = 0
        self.reported = 0
        self.scheduled = False
        self._wake = self.wake  # bound once: post() allocates nothing
        proc.irqs.append(self)

    def post(self, value):
        # Call from the IRQ handler. Keep `value` a small int or a preallocated object.
        nxt = self.tail + 1
        if nxt == self.size:
            nxt = 0
        if nxt == self.head:
            self.overflow += 1
            return False
        self.buf[self.tail] = value
        self.tail = nxt
        if not self.scheduled:
            self.scheduled = True
            try:
                micropython.schedule(self._wake, None)
            except RuntimeError:
                self.scheduled = False  # scheduler queue full: the next post tries again
        return True

    def count(self):
        return (self.tail - self.head) % self.size + (self.overflow != self.reported)

    def wake(self, _):
        self.scheduled = False
        self.proc.kernel.make_ready(self.proc)

    def drain(self):
        p = self.proc
        if self.overflow != self.reported:
            lost = self.overflow - self.reported
            if not p.inbox.put("irq-lost", lost, None, 0):
                return
            self.reported += lost
        while self.head != self.tail:
            if not p.inbox.put(self.msg, self.buf[self.head], None, 0):
                return
            self.head = (self.head + 1) % self.size
