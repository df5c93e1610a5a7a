# One update package moved to flash: the board's side of a push. Bytes land in a part file
# that is synced at every acknowledgement, so a cut link or a reset resumes from the last
# acknowledged byte; the whole file's SHA-256 must match what HELLO announced.
import asyncio
from time import ticks_ms, ticks_diff
from micropython import const
from outstack.ota import link as L

IDLE_MS = const(5000)  # a push in progress that sends nothing for this long is over
LINK_IDLE_MS = const(60000)  # a TCP peer that sends no frame for this long is let go
SESSION_MS = const(600000)  # and none stays longer than this, busy or not
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
        self.push = None  # outstack.ota.push while a push may be in progress (push.py)

    async def serve(self, reader, writer, tcp=False, console=True):
        """One connection: any number of packages, one after another. A TCP one is bounded
        (MAX_LINKS at once, LINK_IDLE_MS without a frame, SESSION_MS in all) and closed here."""
        link = L.Link(reader, writer)
        try:
            if tcp and len(self.open) >= MAX_LINKS:
                self.refused += 1
                await link.send(L.FAIL, b"too many connections: try again later")
                return
            if tcp:
                self.open.append(writer)
            await self._run(link, tcp, console)
        except (EOFError, OSError, asyncio.TimeoutError):
            pass  # link cut or idle: what arrived stays for the resume
        finally:
            store, link.store = link.store, None
            if store is not None:
                store.close()
                if self.active is store:
                    self.active = None
            self.settle()
            if tcp:
                await self.drop(writer)

    def settle(self):
        # No push in progress: its code (push.py, store.py) goes until the next HELLO.
        if self.active is not None or self.push is None:
            return
        from outstack import unload

        self.push = None
        unload("outstack.ota", ("push", "store"))

    def _push(self):
        if self.push is None:
            from outstack.ota import push

            self.push = push
        return self.push

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

    async def _run(self, link, tcp, console):
        start = ticks_ms()
        while True:
            pushing = link.store is not None and link.store.f is not None
            if pushing:
                kind = await asyncio.wait_for_ms(link.frame(), IDLE_MS)
            elif tcp:
                kind = await asyncio.wait_for_ms(link.frame(), self.idle_ms)
            else:
                kind = await link.frame()  # UART between pushes: wait for as long as it takes
            if tcp and ticks_diff(ticks_ms(), start) > SESSION_MS:
                await link.send(L.FAIL, b"session too long: connect again")
                return
            pushing = link.store is not None and link.store.f is not None
            if kind == L.HELLO:
                await self._push().hello(self, link)
                store = link.store
                if store is None or store.f is None:  # refused: nothing in progress here
                    if store is not None and self.active is store:
                        self.active = None
                    link.store = None
                    self.settle()
            elif kind == L.DATA and pushing:
                await self._push().data(self, link)
            elif kind == L.END and pushing:
                await self._push().end(self, link)
                link.store = None
                self.settle()
            elif kind == L.STATUS:
                import json

                said = self.status() if self.status else {"last": self.last}
                await link.send(L.DONE, json.dumps(said).encode())
            elif kind == L.CONSOLE:
                await self._console(link, console)
            elif kind == L.ABORT:
                await self._push().abort(self, link)
                link.store = None
                self.settle()
            elif pushing:
                await link.send_u32(L.NAK, link.store.have)  # damaged or unexpected frame

    async def _console(self, link, console=True):
        import gc

        gc.collect()  # compiling the console wants its RAM in one piece
        from outstack.debug.console import over_link

        await over_link(link, self.console if console else None)
