"""Byte pipes of the virtual board: a queue that drains into a file descriptor, optionally at
a serial line's rate, and the pty pairs that stand in for USB CDC and UART ports."""

import errno
import os
import pty
import time
import tty

BURST_S = 0.002  # a throttled link may catch up at most this much line time at once
MAX_PENDING = 1 << 16  # beyond this we stop reading the source: back-pressure, not loss
STALL_S = 0.5  # no byte taken for this long, with nobody holding the port open: nobody reads
GIVE_UP_S = 5.0  # a reader that holds the port open but takes nothing for this long has gone


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
        self.blocked = False  # the last write found the reader's buffer full

    def push(self, data: bytes) -> None:
        if not self.pending:
            self.moved = time.monotonic()
        self.pending += data

    def push_or_drop(self, data: bytes) -> None:
        """As push, but lost and counted when the queue is full and its reader takes nothing
        (a serial line whose far end has stopped reading: its buffer overflows)."""
        if self.full() and self.blocked:
            self.dropped += len(data)
            return
        self.push(data)

    def full(self) -> bool:
        return len(self.pending) >= MAX_PENDING

    def stalled(self, now: float) -> float:
        """How long a full queue has waited for its reader to take a byte (0: not full)."""
        return now - self.moved if self.full() else 0.0

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
            self.blocked = True
            return
        except OSError as e:
            if e.errno not in (errno.EIO, errno.EPIPE, errno.EBADF):
                raise
            self.dropped += len(self.pending)
            self.pending.clear()
            return
        del self.pending[:done]
        self.blocked = False
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
        self._checked = (float("-inf"), False)  # (when, whether another process had it open)

    def read(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def nobody_reads(self, link: Link, now: float) -> bool:
        """`link` (our output into this port) is full and nobody takes it: nobody holds the
        port open, or its holder has taken nothing for GIVE_UP_S. A slow reader (a busy host)
        is waited for: a board's USB holds its output for a host that has the port open."""
        waited = link.stalled(now)
        if waited < STALL_S:
            return False
        return waited > GIVE_UP_S or not self._opened_elsewhere(now)

    def _opened_elsewhere(self, now: float) -> bool:
        if now - self._checked[0] < STALL_S:
            return self._checked[1]
        me, found = str(os.getpid()), False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
                found = any(os.readlink(f"/proc/{pid}/fd/{fd}") == self.path for fd in fds)
            except OSError:
                continue  # gone, or not ours to look at
            if found:
                break
        self._checked = (now, found)
        return found

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
