"""Byte pipes of the virtual board: a queue that drains into a file descriptor, optionally at
a serial line's rate, and the pty pairs that stand in for USB CDC and UART ports."""

import errno
import os
import pty
import time
import tty

BURST_S = 0.002  # a throttled link may catch up at most this much line time at once
MAX_PENDING = 1 << 16  # beyond this we stop reading the source: back-pressure, not loss
STALL_S = 0.5  # a reader that takes nothing for this long has gone (a board's USB write timeout)


class Link:
    """Bytes waiting for `fd`. With a `rate` (bytes/s) they leave no faster than the line."""

    def __init__(self, fd: int | None = None, rate: float | None = None):
        self.fd = fd
        self.rate = rate
        self.pending = bytearray()
        self.credit = 0.0
        self.stamp = time.monotonic()
        self.dropped = 0
        self.sent = 0
        self.moved = self.stamp  # when the reader last took bytes (or the queue last filled)

    def push(self, data: bytes) -> None:
        if not self.pending:
            self.moved = time.monotonic()
        self.pending += data

    def full(self) -> bool:
        return len(self.pending) >= MAX_PENDING

    def stalled(self, now: float) -> bool:
        """Full, and the reader has taken nothing for STALL_S: nobody reads (a slow reader
        is waited for; its bytes are never dropped)."""
        return self.full() and now - self.moved > STALL_S

    def _allowance(self, now: float) -> int:
        if self.rate is None:
            return len(self.pending)
        self.credit = min(self.credit + (now - self.stamp) * self.rate,
                          max(1.0, self.rate * BURST_S))
        self.stamp = now
        return min(len(self.pending), int(self.credit))

    def pump(self, now: float) -> None:
        """Write what the line allows now; a reader that has stopped reading loses data."""
        if self.fd is None or not self.pending:
            self.stamp = now
            return
        n = self._allowance(now)
        if n <= 0:
            return
        try:
            done = os.write(self.fd, self.pending[:n])
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EPIPE, errno.EBADF):
                raise
            self.dropped += len(self.pending)
            self.pending.clear()
            return
        del self.pending[:done]
        self.sent += done
        if done:
            self.moved = now
        if self.rate is not None:
            self.credit -= done

    def due_in(self, now: float) -> float | None:
        """Seconds until the next byte may leave, or None when idle or unthrottled."""
        if not self.pending or self.rate is None:
            return None
        return max(0.0, (1.0 - self.credit) / self.rate)


class Port:
    """A pty pair: the far end (slave) is the port a user opens; we keep the near end (master)
    and also hold the slave open so the master never reports hang-up while nobody is there."""

    def __init__(self):
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)

    def read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def drain_unread(self) -> None:
        """Nobody reads the port: discard what waits in it, as a USB CDC with no host does."""
        try:
            os.set_blocking(self._slave, False)
            while os.read(self._slave, 4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
