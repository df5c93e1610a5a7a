# One update package moved to flash: the board's side of a push. Bytes land in a part file
# that is synced at every acknowledgement, so a cut link or a reset resumes from the last
# acknowledged byte; the whole file's SHA-256 must match what HELLO announced.
import asyncio
from time import ticks_ms, ticks_diff
from micropython import const
from outstack.ota import link as L
from outstack.ota.store import PACKAGE, Store, free_for

WINDOW = const(8192)  # bytes the host may have in flight: enough to keep the line busy
ACK_EVERY = const(2048)
IDLE_MS = const(5000)  # a push in progress that sends nothing for this long is over
LINK_IDLE_MS = const(60000)  # a TCP peer that sends no frame for this long is let go
SESSION_MS = const(600000)  # and none stays longer than this, busy or not
STALE_MS = const(10000)  # a push whose bytes stopped this long gives the lock up to another
MAX_LINKS = const(3)  # TCP connections at once; more are told so and closed
MAX_SIZE = const(1 << 20)


class Receiver:
    def __init__(self, max_size=MAX_SIZE, on_package=None, status=None, console=None):
        self.max_size = max_size
        self.console = console  # async fn(line) -> JSON text: the debug console, if offered
        self.status = status  # fn() -> dict: what STATUS answers
        self.on_package = on_package  # async fn(path) -> text: install it (the installer)
        self.active = None  # the Store of the push in progress, on whichever link
        self.received = 0  # bytes taken into flash, all sessions
        self.last = None  # the last session's result, for `status`
        self.open = []  # the TCP writers being served, closed when the server stops
        self.refused = 0  # TCP connections turned away (over MAX_LINKS)
        self.idle_ms = LINK_IDLE_MS

    async def serve(self, reader, writer, tcp=False, console=True):
        """One connection: any number of packages, one after another. A TCP one is bounded
        (MAX_LINKS at once, LINK_IDLE_MS without a frame, SESSION_MS in all) and closed here."""
        link = L.Link(reader, writer)
        store = Store()
        try:
            if tcp and len(self.open) >= MAX_LINKS:
                self.refused += 1
                await link.send(L.FAIL, b"too many connections: try again later")
                return
            if tcp:
                self.open.append(writer)
            await self._run(link, store, tcp, console)
        except (EOFError, OSError, asyncio.TimeoutError):
            pass  # link cut or idle: what arrived stays for the resume
        finally:
            store.close()
            if self.active is store:
                self.active = None
            if tcp:
                await self.drop(writer)

    async def drop(self, writer):
        if writer in self.open:
            self.open.remove(writer)
        try:
            writer.close()
            await writer.wait_closed()
        except Exception:
            pass  # already gone: closing is all we wanted

    async def close_all(self):
        for w in list(self.open):
            await self.drop(w)

    @property
    def busy(self):
        return self.active is not None

    async def _run(self, link, store, tcp, console):
        start = ticks_ms()
        while True:
            if store.f is not None:
                kind = await asyncio.wait_for_ms(link.frame(), IDLE_MS)
            elif tcp:
                kind = await asyncio.wait_for_ms(link.frame(), self.idle_ms)
            else:
                kind = await link.frame()  # UART between pushes: wait for as long as it takes
            if tcp and ticks_diff(ticks_ms(), start) > SESSION_MS:
                await link.send(L.FAIL, b"session too long: connect again")
                return
            if kind == L.HELLO:
                await self._hello(link, store)
            elif kind == L.DATA and store.f:
                await self._data(link, store)
            elif kind == L.END and store.f:
                await self._end(link, store)
            elif kind == L.STATUS:
                import json

                said = self.status() if self.status else {"last": self.last}
                await link.send(L.DONE, json.dumps(said).encode())
            elif kind == L.CONSOLE:
                await self._console(link, console)
            elif kind == L.ABORT:
                await self._abort(link, store)
            elif store.f:
                await link.send_u32(L.NAK, store.have)  # damaged or unexpected frame

    async def _abort(self, link, store):
        if self.active is not None and self.active is not store:
            await link.send(L.FAIL, b"not aborted: the push in progress belongs to another link")
            return
        store.discard()
        self.active = None
        await link.send(L.FAIL, b"aborted by the host")

    async def _console(self, link, console=True):
        if self.console is None or not console:
            await link.send(L.FAIL, b"no console on this link")
            return
        try:
            line = bytes(link.payload()).decode()
        except UnicodeError:
            await link.send(L.FAIL, b"a console command must be UTF-8 text")
            return
        try:
            for piece in await self.console(line):
                piece = piece.encode() if isinstance(piece, str) else piece
                for i in range(0, len(piece), 1024):
                    await link.send(L.OUT, piece[i : i + 1024])
        except MemoryError:  # the link lives on: the next command may find room
            import gc

            gc.collect()
            await link.send(L.FAIL, b"out of memory for this console command: try again, or "
                            b"free RAM (fewer servers)")
            return
        await link.send(L.DONE)

    async def _hello(self, link, store):
        p = link.payload()
        if len(p) != 36:
            await link.send(L.FAIL, b"malformed HELLO")
            return
        if not self._take(store):
            await link.send(L.BUSY, b"another push is in progress")
            return
        size = L.u32(p)
        store.close()
        have = 0
        free = free_for()
        if not self.max_size:
            reason = "this link carries the console only: push updates to the OTA server"
        elif size > self.max_size:
            reason = "package of %d bytes is over the %d-byte limit" % (size, self.max_size)
        elif size > free:
            reason = "package of %d bytes does not fit: %d bytes of flash free" % (size, free)
        else:
            reason = None
            have = store.resume(size, p[4:36])
        if reason:
            await link.send(L.FAIL, reason.encode())
            return
        self.last = "receiving %d bytes from %d" % (size, have)
        store.moved = ticks_ms()
        self.active = store
        await link.send_u32(L.READY, have, WINDOW)

    def _take(self, store):
        # The push lock: free, ours, or held by a push that stopped moving (then it is void).
        a = self.active
        if a is None or a is store:
            return True
        if ticks_diff(ticks_ms(), a.moved) < STALE_MS:
            return False
        a.close()
        self.active = None
        return True

    async def _data(self, link, store):
        p = link.payload()
        at = L.u32(p)
        if at != store.have or store.have + len(p) - 4 > store.size:
            if at > store.have:
                await link.send_u32(L.NAK, store.have)  # a gap: a frame went missing
            return  # a duplicate: already on flash
        before = store.have
        store.write(p[4:])
        self.received += len(p) - 4
        if store.have == store.size or before // ACK_EVERY != store.have // ACK_EVERY:
            store.sync()  # on flash before we say so
            await link.send_u32(L.ACK, store.have)

    async def _end(self, link, store):
        why = store.finish()
        self.active = None
        if why:
            self.last = "refused: " + why
            await link.send(L.FAIL, why.encode())
            return
        said = "received %d bytes" % store.size
        if self.on_package:
            said = await self.on_package(PACKAGE)
        self.last = said
        await link.send(L.DONE, said.encode())

