"""The virtual board: runs the MicroPython unix port as a board and plays its hardware.

One thread owns every file descriptor and timer (the event loop below); callers talk to it
through `_do`, so tests and the CLI can drive the board from any thread."""

import ctypes
import fcntl
import json
import os
import queue
import random
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..image import check as check_image
from ..paths import ROM, micropython
from .link import Link, Port

CTRL_C = 3
FLASH_BAD = 3  # exit status of the ROM when the image does not mount
# Heap for the board's own Python (boards/unix/rom: machine, the REPL, the flash driver, C in a
# real port's flash), on top of the board's HEAP; the ROM sets aside what it did not take.
ROM_HEAP = 65536
QUICK_CRASHES = 5  # interpreter deaths in a row, each soon after boot, before we stop trying


class Event:
    def __init__(self, kind: str, detail: str = ""):
        self.t = time.monotonic()
        self.kind = kind
        self.detail = detail

    def __repr__(self):
        return f"Event({self.kind!r}, {self.detail!r})"


class VirtualBoard:
    def __init__(self, image, board="unix", uart_baud=115200, usb_baud=None,
                 wifi=("outstack", "outstack-key"), heap=None):
        self.facts = boards.load(board)
        self.board = board
        self.image = Path(image).resolve()
        self.uart_baud = uart_baud
        self.usb_baud = usb_baud
        self.wifi = wifi  # (ssid, key) of the access point in range, or None
        self.wifi_up = True
        self.heap = heap or self.facts["HEAP"]
        self.events: list[Event] = []
        self.output = bytearray()  # everything the board printed on USB, for tests and logs
        self.listeners = []  # callables fed each chunk of USB output
        self.event_hooks = []  # callables fed each Event
        self.flash_writes = 0
        self.state = "off"
        self.error = None
        self._cond = threading.Condition()
        self._cmds: queue.Queue = queue.Queue()
        self._proc = None
        self._thread = None
        self._stopping = False

    # ----- lifetime ---------------------------------------------------------------------
    def start(self, mode="friendly", cut_after=0, cut_pages=None):
        check_image(self.image, self.board)
        self._lock_image()
        self.dir = Path(tempfile.mkdtemp(prefix="outstack-sim-"))
        self.backup = self.dir / "backup.bin"
        self.usb, self.uart = Port(), Port()
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._reading = set()  # the fds of ptys and board sockets we read now (_watch)
        self._listen("ctl", self._on_ctl_accept)
        self._listen("uart1", self._on_uart_accept)
        self.usb_out = Link(self.usb.master, self._rate(self.usb_baud, 10))
        self.uart_to_pty = Link(self.uart.master, self._rate(self.uart_baud, 10))
        self.uart_to_dev = Link(None, self._rate(self.uart_baud, 10))
        self.dev_in = Link(None)
        self._gate()
        self._reset_hw()
        self._thread = threading.Thread(target=self._loop, name="virtual-board", daemon=True)
        self._thread.start()
        self.power_on(mode, cut_after, cut_pages)
        return self

    def stop(self):
        if self._thread:
            self._do(self._kill)
            self._stopping = True
            os.write(self._wake_w, b"x")
            self._thread.join(5)
            self._thread = None
        for port in (getattr(self, "usb", None), getattr(self, "uart", None)):
            if port:
                port.close()
        if getattr(self, "_image_lock", None):
            self._image_lock.close()
            self._image_lock = None

    def _lock_image(self):
        self._image_lock = lock_path(self.image, f"flash image {self.image}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def usb_port(self) -> str:
        return self.usb.path

    @property
    def uart_port(self) -> str:
        return self.uart.path

    @property
    def pid(self) -> int | None:
        """Process id of the running interpreter (the chip), for host-side measurements."""
        proc = self._proc
        return proc.pid if proc else None

    # ----- what a test or the CLI does to the board --------------------------------------
    def power_on(self, mode="friendly", cut_after=0, cut_pages=None):
        """Switch on (PWRON). With cut_after=N power fails during the N-th flash erase or
        program of this boot, after cut_pages of its pages (random when None)."""
        pages = cut_pages if cut_pages is not None else random.randint(0, 16)
        self._do(lambda: self._boot("PWRON", mode, cut_after, pages, fresh=True))

    def cut_power(self):
        """Power fails now, wherever the interpreter is (mid-write included)."""
        self._do(lambda: self._power_fail("cut by test"))

    def type(self, data: bytes):
        """Bytes as if typed on the USB REPL (Ctrl-C interrupts, as on a board)."""
        self._do(lambda: self._usb_bytes(data))

    def set_wifi(self, up: bool):
        self.wifi_up = up

    def wait_for(self, kind, since=0, timeout=10.0, detail=None) -> Event:
        """Wait for an event of `kind` at index >= since; raise TimeoutError if none comes."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.kind == kind and (detail is None or ev.detail == detail):
                        return ev
                left = end - time.monotonic()
                if left <= 0 or self.state == "halted":
                    raise TimeoutError(f"virtual board: no '{kind}' event within {timeout} s "
                                       f"(events: {self.events[since:]}; error: {self.error})")
                self._cond.wait(min(left, 0.1))

    def last_feed_before(self, event: Event) -> float:
        """When the watchdog was last fed (or armed) before `event`."""
        return max(e.t for e in self.events if e.kind in ("wdt-armed", "wdt-fed") and e.t <= event.t)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    # ----- the event loop ----------------------------------------------------------------
    def _do(self, fn):
        self._cmds.put(fn)
        os.write(self._wake_w, b"x")

    def _loop(self):
        while not self._stopping:
            try:
                for key, _ in self.sel.select(self._timeout()):
                    key.data()
                self._tick()
            except Exception as e:  # the board must outlive a bug in one handler; say so
                self._emit("host-error", repr(e))
        self.sel.close()

    def _timeout(self):
        now = time.monotonic()
        waits = [1.0]
        for link in (self.usb_out, self.uart_to_pty, self.uart_to_dev, self.dev_in):
            due = link.due_in(now)
            if due is not None:
                waits.append(due)
            elif link.pending and link.fd is not None:
                waits.append(0.005)  # the reader is slow: try again soon
        if self.wdt_deadline is not None:
            waits.append(self.wdt_deadline - now)
        return max(0.0, min(waits))

    def _tick(self):
        now = time.monotonic()
        for link in (self.usb_out, self.uart_to_pty, self.uart_to_dev, self.dev_in):
            link.pump(now)
        if self.usb.nobody_reads(self.usb_out, now):
            self.usb.drain_unread()  # nobody reads the port: a board's USB drops output then
        self._gate()
        if self.wdt_deadline is not None and now >= self.wdt_deadline:
            self._emit("wdt-reset", f"{self.wdt_ms} ms without a feed")
            self._boot("WDT", "friendly")
        self._poll_child()

    def _on_wake(self):
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while not self._cmds.empty():
            self._cmds.get_nowait()()

    def _emit(self, kind, detail=""):
        ev = Event(kind, detail)
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()
        for fn in list(self.event_hooks):
            fn(ev)

    # ----- interpreter process -----------------------------------------------------------
    def _reset_hw(self):
        self.wdt_ms = None
        self.wdt_deadline = None
        self.last_feed = None

    def _boot(self, cause, mode, cut_after=0, cut_pages=0, fresh=False):
        self._kill()
        if cause in ("PWRON", "HARD", "WDT"):
            self._reset_hw()
        if fresh:
            self.backup.write_bytes(bytes(2 + self.facts["BACKUP_BYTES"]))
            self._quick_crashes = 0
        cfg = {"cause": cause, "mode": mode, "board": self.board, "facts": self.facts,
               "image": str(self.image), "backup": str(self.backup), "uid": self._uid(),
               "ctl": str(self.dir / "ctl"), "uart1": str(self.dir / "uart1"),
               "cut_after": cut_after, "cut_pages": cut_pages, "trace_writes": True,
               "heap": self.heap}
        cfg_path = self.dir / "boot.json"
        cfg_path.write_text(json.dumps(cfg))
        self._proc = subprocess.Popen(
            [micropython(), "-X", f"heapsize={self.heap + ROM_HEAP}", "_sim.py", str(cfg_path)],
            cwd=ROM, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        os.set_blocking(self._proc.stdin.fileno(), False)
        os.set_blocking(self._proc.stdout.fileno(), False)
        self.dev_in = Link(self._proc.stdin.fileno(), self._rate(self.usb_baud, 10))
        self.sel.register(self._proc.stdout.fileno(), selectors.EVENT_READ, self._on_dev_out)
        self.flash_writes = 0
        self.state = "on"
        self._ready = self._held_intr = False  # a Ctrl-C waits for the ROM's "booted"
        self._spawned = time.monotonic()
        self._emit("spawn", cause)

    def _kill(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        self._drain_dev_out(proc)
        self.sel.unregister(proc.stdout.fileno())
        proc.stdout.close()
        proc.stdin.close()
        for name in ("ctl_conn", "uart_conn"):
            conn = getattr(self, name, None)
            if conn is not None:
                self._watch(conn, None, False)
                conn.close()
                setattr(self, name, None)
        self.uart_to_dev = Link(None, self.uart_to_dev.rate)
        self.state = "off"

    def _power_fail(self, why):
        self._kill()
        self._reset_hw()
        self._emit("power-off", why)

    def _poll_child(self):
        if self._proc is None or self._proc.poll() is None:
            return
        code = self._proc.returncode
        self._kill()
        if code == FLASH_BAD:
            self.error = "flash image does not mount"
            self.state = "halted"
            self._emit("halted", self.error)
            return
        quick = time.monotonic() - self._spawned < 2.0
        self._quick_crashes = self._quick_crashes + 1 if quick else 0
        self._emit("crash", f"interpreter exited with status {code}")
        if self._quick_crashes >= QUICK_CRASHES:
            self.error = f"interpreter died {QUICK_CRASHES} times right after boot"
            self.state = "halted"
            self._emit("halted", self.error)
        else:
            self._boot("HARD", "friendly")

    def _uid(self):
        import hashlib  # the same image is the same board in every host process

        return hashlib.sha256(str(self.image).encode()).hexdigest()[:16]

    def _on_dev_out(self):
        if self._proc is not None:
            self._drain_dev_out(self._proc)

    def _drain_dev_out(self, proc):
        while not self.usb_out.full():
            try:
                data = os.read(proc.stdout.fileno(), 4096)
            except (BlockingIOError, OSError, ValueError):
                return
            if not data:
                return
            if _interrupt_char_on(proc.pid):
                data = data.replace(b"\n", b"\r\n")  # a board's text output is cooked
            self.usb_out.push(data)
            self.output += data
            for fn in list(self.listeners):
                fn(data)

    def _gate(self):
        # A full queue toward the board stops our reading of its pty, so the writer waits
        # (a USB host for the device, a UART adapter for its line) instead of the host
        # holding any amount for a board that takes it slowly; reading resumes as it drains.
        # The other way, a full UART1 queue that the line is still taking holds the board's
        # writes back, as its TX FIFO does; one whose reader has stopped loses what comes.
        self._watch(self.usb.master, self._on_usb, not self.dev_in.full())
        self._watch(self.uart.master, self._on_uart_pty, not self.uart_to_dev.full())
        conn = getattr(self, "uart_conn", None)
        if conn is not None:
            out = self.uart_to_pty
            self._watch(conn, lambda: self._on_uart_dev(conn), not out.full() or out.blocked)

    def _watch(self, f, fn, on: bool):
        # Read `f` (calling fn when it has bytes) or not, whichever it is now.
        fd = f if isinstance(f, int) else f.fileno()
        if on and fd not in self._reading:
            self.sel.register(f, selectors.EVENT_READ, fn)
            self._reading.add(fd)
        elif not on and fd in self._reading:
            self.sel.unregister(f)
            self._reading.discard(fd)

    # ----- USB REPL ----------------------------------------------------------------------
    def _on_usb(self):
        self._usb_bytes(self.usb.read())
        self._gate()

    def _usb_bytes(self, data):
        while data:
            before, ctrl_c, data = data.partition(bytes([CTRL_C]))
            self.dev_in.push(before)
            self.dev_in.pump(time.monotonic())
            if not ctrl_c or self._proc is None:
                continue
            if not self._ready:
                # The interpreter is still starting (its host process, then the ROM): a
                # signal now would end it. The interrupt waits for "booted", as a board's
                # Ctrl-C during its reset lands once boot.py runs; what came after it waits
                # in the board's input.
                self._held_intr = True
                continue
            if not _interrupt_char_on(self._proc.pid):
                self.dev_in.push(ctrl_c)  # kbd_intr(-1): a byte like any other (binary links)
                continue
            self.dev_in.rate, rate = None, self.dev_in.rate
            self.dev_in.pump(time.monotonic())  # what came before Ctrl-C goes first
            self.dev_in.rate = rate
            os.kill(self._proc.pid, signal.SIGINT)

    # ----- control line ------------------------------------------------------------------
    def _listen(self, name, on_accept):
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(self.dir / name))
        srv.listen(2)
        srv.setblocking(False)
        self.sel.register(srv, selectors.EVENT_READ, lambda: on_accept(srv))

    def _on_ctl_accept(self, srv):
        conn, _ = srv.accept()
        conn.setblocking(False)
        self.ctl_conn, self._ctl_buf = conn, b""
        self._watch(conn, lambda: self._on_ctl(conn), True)

    def _on_ctl(self, conn):
        if conn is not self.ctl_conn:
            return  # closed by a reset earlier in this round of events
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        self._ctl_buf += data
        *lines, self._ctl_buf = self._ctl_buf.split(b"\n")
        for line in lines:
            self._on_note(line.decode(errors="replace").split(" "))
            if self.ctl_conn is None:
                return  # the note reset the board

    def _on_note(self, words):
        verb, args = words[0], words[1:]
        now = time.monotonic()
        if verb == "F" and self.wdt_ms:
            self.wdt_deadline, self.last_feed = now + self.wdt_ms / 1000, now
            self._emit("wdt-fed")
        elif verb == "w":
            self.flash_writes = int(args[0])
        elif verb == "wdt":
            self.wdt_ms = int(args[0])
            self.wdt_deadline, self.last_feed = now + self.wdt_ms / 1000, now
            self._emit("wdt-armed", args[0])
        elif verb == "booted":
            self._ready = True
            if self._held_intr:
                self._held_intr = False
                self._usb_bytes(bytes([CTRL_C]))
            self._emit("booted", self._proc_cause())
        elif verb == "reset":
            self._emit("reset", args[0])
            self._boot(args[0], "friendly")
        elif verb == "soft":
            self._emit("soft-reset", args[0])
            self._boot("SOFT", args[0])
        elif verb == "cut":
            self._power_fail(f"cut during flash write {args[0]}")
        elif verb == "uart":
            rate = self._rate(int(args[1]), int(args[2]))
            self.uart_to_pty.rate = self.uart_to_dev.rate = rate
        elif verb == "wifi":
            self._reply(self._wifi(args))
        elif verb == "flash-bad":
            self.error = "flash image does not mount: " + " ".join(args)

    def _proc_cause(self):
        spawns = [e for e in self.events if e.kind == "spawn"]
        return spawns[-1].detail if spawns else "?"

    def _reply(self, text):
        self.ctl_conn.setblocking(True)
        self.ctl_conn.sendall(text.encode() + b"\n")
        self.ctl_conn.setblocking(False)

    def _wifi(self, args):
        if args[0] == "up":
            return "yes" if self.wifi and self.wifi_up else "no"
        if args[0] == "scan":
            return self.wifi[0] if self.wifi and self.wifi_up else ""
        ssid, key = (args[1:] + ["", ""])[:2]
        if not self.wifi or not self.wifi_up or ssid != self.wifi[0]:
            return "fail -2"  # STAT_NO_AP_FOUND
        if key != self.wifi[1]:
            return "fail -3"  # STAT_WRONG_PASSWORD
        return "ok 127.0.0.1"

    # ----- UART1 -------------------------------------------------------------------------
    @staticmethod
    def _rate(baud, frame_bits):
        return None if not baud else baud / frame_bits

    def _on_uart_accept(self, srv):
        conn, _ = srv.accept()
        conn.setblocking(False)
        if getattr(self, "uart_conn", None) is not None:
            self._watch(self.uart_conn, None, False)
            self.uart_conn.close()
        self.uart_conn = conn
        self.uart_to_dev.fd = conn.fileno()
        self._gate()

    def _on_uart_dev(self, conn):
        if conn is not self.uart_conn:
            return
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        if data:
            self.uart_to_pty.push_or_drop(data)  # a UART's line does not wait for its reader
            self._gate()

    def _on_uart_pty(self):
        data = self.uart.read()
        if data and self.uart_to_dev.fd is not None:
            self.uart_to_dev.push(data)  # a UART with nobody listening loses what it gets
            self._gate()


def _interrupt_char_on(pid: int) -> bool:
    """Whether the interpreter has Ctrl-C as its interrupt char: the unix port catches SIGINT
    while it has (micropython.kbd_intr(3), the default) and restores SIGINT's default action for
    kbd_intr(-1), which binary protocols over the REPL (mpremote mount) set while they talk.
    A board then takes the byte 0x03 as data and sends its output uncooked; so do we."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except (OSError, ValueError):
        pass
    return True  # no such process (it is going): as before


def _die_with_parent():
    # The board loses power with the process that plays it, however that process ends.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def lock_path(path: Path, what: str):
    """Hold an exclusive lock on `path` for as long as the returned file stays open.
    `what` names the thing in use, for the error message."""
    f = open(path, "rb")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise CliError(f"{what} is in use by another virtual board") from None
    return f

