"""The virtual board played by real firmware under QEMU (`--board mps2-an385`): the same face
as VirtualBoard (ports, start/stop, power, type, wait_for, output, events), another engine.

- The chip: `qemu-system-arm -M mps2-an385 -icount shift=5` running the firmware built by
  outstack.firmware (the framework frozen in). Virtual time follows the instruction count.
- USB REPL: UART0, relayed between a pty of ours and QEMU's socket chardev, so stock mpremote
  drives it and every byte the board prints lands in `output`. UART1 is QEMU's own pty.
- Flash: the board's LittleFS lives in its PSRAM, which QEMU maps from a file (memory-backend-file,
  shared): writes reach the host file at once and outlive resets, SIGKILL and QEMU itself. The
  flash image (FLASH_BLOCKS x FLASH_BLOCK bytes, as for the unix engine) is copied in at power-on
  and back out whenever the chip is off.
- Events come from QMP (RESET, SHUTDOWN) and from what the firmware prints."""

import json
import os
import random
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..image import check as check_image
from .board import Event, _die_with_parent, lock_path
from .link import Link, Port

PSRAM_BYTES = 16 << 20  # the AN385's PSRAM at 0x21000000; QEMU wants all of it
CUT_AT = 0xFFF000  # the power-cut switch in the PSRAM file (boards/mps2-an385/flash.c)
CUT_MAGIC = 0x21545543
ICOUNT_SHIFT = 5  # 32 ns per instruction: 31.25 MIPS, reproducible timings
# What the firmware prints (board.c, and MicroPython's banner) to the event it stands for.
BANNER = b" with Cortex-M3\r\n"  # the friendly REPL starts: after boot.py and main.py
NOTES = ((BANNER, "banner"), (b"watchdog expired", "wdt-bite"), (b"FATAL: fault", "crash"))
TAIL = max(len(needle) for needle, _ in NOTES) - 1


def qemu_binary() -> str | None:
    return shutil.which("qemu-system-arm")


class QemuBoard:
    def __init__(self, image, board="mps2-an385", firmware=None, icount=ICOUNT_SHIFT, blank=False,
                 sleep=True):
        """blank: a missing image is an erased flash (the firmware makes the filesystem);
        otherwise the image must exist and mount, as for the unix engine. sleep=False: while
        the core waits (WFI) virtual time jumps to the next timer instead of following the
        host clock, so figures repeat exactly (and waits take no host time)."""
        self.facts = boards.load(board)
        self.board = board
        self.image = Path(image).resolve()
        self.firmware = Path(firmware) if firmware else None
        self.icount = icount
        self.sleep = sleep
        self.blank = blank
        self.events: list[Event] = []
        self.output = bytearray()  # everything the board printed on UART0
        self.listeners = []  # callables fed each chunk of output
        self.event_hooks = []
        self.state = "off"
        self.error = None
        self._cond = threading.Condition()
        self._proc = None
        self._thread = None
        self._lock = threading.Lock()  # the relay sockets, swapped at each power-on
        self._chip = None  # the chardev connection to QEMU's UART0
        self._held = False  # its output is not taken: the USB reader is behind
        self._qmp = None
        self._qmp_buf = b""
        self._cause = None
        self._crashed = False  # a fault report since the last start
        self._bitten = False  # QEMU's watchdog fired since the last start
        self._in_qmp = False
        self._banner_unclaimed = False  # a banner no start has claimed yet
        self._tail = b""  # the end of the last chunk, for notes split across chunks

    # ----- lifetime ---------------------------------------------------------------------
    def start(self, mode="friendly", cut_after=0, cut_pages=None):
        if qemu_binary() is None:
            raise CliError("qemu-system-arm is not installed: apt-get install qemu-system-arm")
        if self.firmware is None:
            from .. import firmware

            self.firmware = firmware.build(self.board)
        if self.blank and not self.image.exists():
            self.image.touch()  # erased flash: the firmware makes the filesystem on first boot
        elif not self.blank or self.image.stat().st_size:
            check_image(self.image, self.board)
        self._image_lock = lock_path(self.image, f"flash image {self.image}")
        self.dir = Path(tempfile.mkdtemp(prefix="outstack-qemu-"))
        self.psram = self.dir / "psram.bin"
        self.usb = Port()
        self.usb_out = Link(self.usb.master)  # what the chip printed, as the reader takes it
        self.sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        self.sel.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self.sel.register(self.usb.master, selectors.EVENT_READ, self._on_usb)
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="qemu-board", daemon=True)
        self._thread.start()
        self.power_on(mode, cut_after, cut_pages)
        return self

    def stop(self):
        self._kill()
        self._stopping = True
        if self._thread:
            os.write(self._wake_w, b"x")
            self._thread.join(5)
            self._thread = None
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)
        if getattr(self, "usb", None):
            self.usb.close()
        if getattr(self, "_image_lock", None):
            self._image_lock.close()
            self._image_lock = None
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def usb_port(self) -> str:
        return self.usb.path

    @property
    def uart_port(self) -> str:
        return self.uart_pty

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc else None

    @property
    def flash_writes(self) -> int:
        """Flash erases and programs since the chip last started from reset (power-on, reset
        button, watchdog...), as the firmware counts them: flash.c keeps the count beside the
        power-cut switch, where the host reads it. While the chip is off: the count of its
        last boot. A soft reset keeps counting."""
        try:
            with open(self.psram, "rb") as f:
                f.seek(CUT_AT + 16)
                return struct.unpack("<I", f.read(4))[0]
        except (AttributeError, OSError, struct.error):
            return 0  # never switched on

    # ----- what a test or the CLI does to the board --------------------------------------
    def power_on(self, mode="friendly", cut_after=0, cut_pages=None):
        """Switch on (PWRON): a fresh QEMU, the flash image copied into its PSRAM file. With
        cut_after=N power fails during the N-th flash erase or program of this boot, after
        cut_pages of its 256-byte pages (random when None)."""
        if mode != "friendly":
            raise CliError("the QEMU board boots to its friendly REPL only (for now)")
        self._kill()
        self._load_flash()
        if cut_after:
            pages = cut_pages if cut_pages is not None else random.randint(0, 16)
            with open(self.psram, "r+b") as f:
                f.seek(CUT_AT)
                f.write(struct.pack("<4I", CUT_MAGIC, cut_after, pages, 0))
        self._cause = "PWRON"  # what the next "booted" event reports
        self._banner_unclaimed = False
        self._spawn()
        self._emit("spawn", "PWRON")

    def cut_power(self):
        """Power fails now, wherever the chip is: QEMU dies; the flash keeps what was written."""
        self._kill()
        self._emit("power-off", "cut by test")

    def reset(self):
        """The reset button (the board reads it as HARD)."""
        self._qmp_send("system_reset")

    def type(self, data: bytes):
        """Bytes as if typed on the USB REPL (the firmware turns Ctrl-C into KeyboardInterrupt)."""
        self._banner_unclaimed = False  # a banner from before this input is not a start's
        with self._lock:
            if self._chip is not None:
                self._chip.sendall(data)

    def wait_for(self, kind, since=0, timeout=10.0, detail=None) -> Event:
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events[since:]:
                    if ev.kind == kind and (detail is None or ev.detail == detail):
                        return ev
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"qemu board: no '{kind}' event within {timeout} s "
                                       f"(events: {self.events[since:]}; error: {self.error})")
                self._cond.wait(min(left, 0.1))

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    # ----- the chip ----------------------------------------------------------------------
    def _load_flash(self):
        size = self.facts["FLASH_BLOCK"] * self.facts["FLASH_BLOCKS"]
        data = self.image.read_bytes() if self.image.exists() else b""
        if data and len(data) != size:
            raise CliError(f"flash image {self.image} is {len(data)} bytes; a {self.board} "
                           f"image is {size} bytes")
        with open(self.psram, "wb") as f:
            f.write(data)
            f.truncate(PSRAM_BYTES)

    def _save_flash(self):
        size = self.facts["FLASH_BLOCK"] * self.facts["FLASH_BLOCKS"]
        with open(self.psram, "rb") as f:
            data = f.read(size)
        if data.count(0) == len(data):
            return  # never formatted: the firmware makes the filesystem on first boot
        tmp = self.image.with_name(self.image.name + ".new")
        tmp.write_bytes(data)
        os.replace(tmp, self.image)

    def _command(self, chardev: str, qmp: str) -> list[str]:
        return [qemu_binary(), "-M", "mps2-an385,memory-backend=psram",
                "-object", f"memory-backend-file,id=psram,mem-path={self.psram},"
                           f"size={PSRAM_BYTES},share=on",
                "-icount", f"shift={self.icount},sleep={'on' if self.sleep else 'off'}", "-display", "none", "-monitor", "none",
                "-semihosting", "-chardev", f"socket,id=usb,path={chardev}",
                "-serial", "chardev:usb", "-serial", "pty",
                "-qmp", f"unix:{qmp},server=on,wait=off", "-kernel", str(self.firmware),
                "-S"]  # held until QMP is up (_qmp_connect): a loaded host races no power cut

    def _spawn(self):
        chardev, qmp = self.dir / "uart0.sock", self.dir / "qmp.sock"
        for path in (chardev, qmp):
            path.unlink(missing_ok=True)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(str(chardev))
        srv.listen(1)
        srv.settimeout(20)
        self._proc = subprocess.Popen(self._command(str(chardev), str(qmp)),
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=_die_with_parent)
        try:
            chip, _ = srv.accept()
        except OSError:
            out = self._proc.stdout.read1(4096).decode(errors="replace") if self._proc else ""
            self._kill()
            raise CliError(f"qemu-system-arm did not start: {out.strip()}")
        finally:
            srv.close()
        chip.setblocking(False)
        self.uart_pty = self._qmp_connect(qmp)  # the chip runs from here on
        # Both relays registered under the lock: a chip that stops at once (a power cut at
        # its first flash write) is seen by the loop thread, whose _kill waits for the lock,
        # so it finds both registered, never one of them already gone.
        with self._lock:
            self._chip, self._held = chip, False
            self.sel.register(chip, selectors.EVENT_READ, self._on_chip)
            self.sel.register(self._qmp, selectors.EVENT_READ, self._on_qmp)
            self.state = "on"
        os.write(self._wake_w, b"x")

    def _kill(self):
        proc, self._proc = self._proc, None
        with self._lock:
            chip, self._chip = self._chip, None
        for conn in (chip, self._qmp):
            if conn is not None:
                try:
                    self.sel.unregister(conn)
                except (KeyError, ValueError):
                    pass
                conn.close()
        self._qmp = None
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            proc.stdout.close()
            self._save_flash()
        self.state = "off"

    # ----- QMP ---------------------------------------------------------------------------
    def _qmp_connect(self, path) -> str:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                conn.connect(str(path))
                break
            except OSError:
                conn.close()
                if time.monotonic() > deadline:
                    raise CliError("qemu-system-arm's QMP socket did not open")
                time.sleep(0.02)
        self._qmp, self._qmp_buf = conn, b""
        self._qmp_reply()  # the greeting
        self._qmp_send("qmp_capabilities")
        self._qmp_reply()
        self._qmp_send("query-chardev")
        chardevs = self._qmp_reply()["return"]
        self._qmp_send("cont")  # the chip runs from here on
        self._qmp_reply()
        conn.setblocking(False)
        return next(c["filename"].removeprefix("pty:") for c in chardevs
                    if c["filename"].startswith("pty:"))

    def _qmp_send(self, command):
        if self._qmp is not None:
            self._qmp.sendall(json.dumps({"execute": command}).encode() + b"\n")

    def _qmp_reply(self) -> dict:
        while True:
            line, sep, rest = self._qmp_buf.partition(b"\n")
            if sep:
                self._qmp_buf = rest
                msg = json.loads(line)
                if "event" not in msg:
                    return msg
                continue
            data = self._qmp.recv(4096)
            if not data:
                raise CliError("qemu-system-arm closed its QMP socket")
            self._qmp_buf += data

    def _on_qmp(self):
        try:
            data = self._qmp.recv(4096) if self._qmp else b""
        except BlockingIOError:
            return
        self._qmp_buf += data
        while b"\n" in self._qmp_buf:
            line, _, self._qmp_buf = self._qmp_buf.partition(b"\n")
            msg = json.loads(line)
            self._on_qmp_event(msg.get("event"), msg.get("data", {}))
        if not data and self._qmp is not None:
            self.sel.unregister(self._qmp)
            self._qmp.close()
            self._qmp = None

    def _on_qmp_event(self, event, data):
        if event == "WATCHDOG":
            self._bitten = True
            self._emit("wdt-reset", data.get("action", ""))
        elif event == "RESET":
            self._in_qmp = True
            self._on_chip(force=True)  # what it printed before it reset (a fault report) goes first
            self._in_qmp = False
            if data.get("reason", "") != "guest-reset":
                self._cause = "HARD"  # the monitor's system_reset: the reset button
            else:
                self._cause = "WDT" if self._bitten else "HARD" if self._crashed else "SOFT"
            self._crashed = self._bitten = False
            self._emit("reset", self._cause)
            if self._banner_unclaimed:  # its banner outran the event: the REPL is up already
                self._booted()

    # ----- the relay and its thread ------------------------------------------------------
    def _loop(self):
        while not self._stopping:
            try:
                for key, _ in self.sel.select(0.005 if self.usb_out.pending else 1.0):
                    key.data()
                self._pump_usb()
            except Exception as e:  # the board must outlive a bug in one handler; say so
                self._emit("host-error", repr(e))
        self.sel.close()

    def _on_wake(self):
        os.read(self._wake_r, 4096)

    def _on_usb(self):
        data = self.usb.read()
        if data:
            self.type(data)

    def _pump_usb(self):
        now = time.monotonic()
        self.usb_out.pump(now)
        if self.usb.nobody_reads(self.usb_out, now):
            self.usb.drain_unread()  # nobody reads the port: a board's USB drops output then
        with self._lock:
            chip = self._chip if self._held else None
            if chip is not None and not self.usb_out.full():
                self._held = False
                self.sel.register(chip, selectors.EVENT_READ, self._on_chip)  # reader caught up

    def _on_chip(self, force=False):
        """Take what the chip printed. force: all of it, even past a slow reader (the report
        of a fault must be read before the reset that follows it is)."""
        with self._lock:
            chip = self._chip
            if chip is not None and self.usb_out.full() and not force and not self._held:
                # A slow reader: stop taking the chip's output, so QEMU holds UART0 back
                # (the firmware waits to print, as on a board whose host reads slowly).
                self._held = True
                self.sel.unregister(chip)
        while chip is not None and (force or not self._held):
            try:
                data = chip.recv(4096)
            except BlockingIOError:
                return
            if not data:  # QEMU has gone
                self._chip_stopped()
                return
            self._from_chip(data)

    def _chip_stopped(self):
        with open(self.psram, "rb") as f:
            f.seek(CUT_AT)
            magic, _, _, fired = struct.unpack("<4I", f.read(16))
        self._kill()
        why = f"cut during flash write {fired}" if magic == CUT_MAGIC and fired else "chip stopped"
        self._emit("power-off", why)

    def _from_chip(self, data):
        self.output += data
        self.usb_out.push(data)
        self.usb_out.pump(time.monotonic())
        for fn in list(self.listeners):
            fn(data)
        self._notes(data)

    def _notes(self, data: bytes):
        """Events from what the firmware printed (a banner, a watchdog bite, a fault), in order."""
        text = self._tail + data
        found = []
        for needle, kind in NOTES:
            at = text.find(needle)
            while at >= 0:
                if at + len(needle) > len(self._tail):  # not seen whole in the last chunk
                    found.append((at, kind))
                at = text.find(needle, at + 1)
        self._tail = text[-TAIL:]
        for _, kind in sorted(found):
            self._emit(kind)
            self._crashed = self._crashed or kind == "crash"
            if kind == "banner":
                self._banner_unclaimed = True
                if not self._in_qmp:
                    self._on_qmp()  # a RESET waiting on QMP came before this banner
                if self._cause:
                    self._booted()

    def _booted(self):
        """The friendly REPL is up after a start (power-on or reset) with self._cause."""
        self._emit("booted", self._cause)
        self._cause = None
        self._banner_unclaimed = False

    def _emit(self, kind, detail=""):
        ev = Event(kind, detail)
        with self._cond:
            self.events.append(ev)
            self._cond.notify_all()
        for fn in list(self.event_hooks):
            fn(ev)
