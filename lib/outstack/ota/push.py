# The frames of a push (HELLO, DATA, END, ABORT): loaded when a HELLO arrives and let go
# when no push is in progress (Receiver.settle), with store.py and its SHA-256.
from time import ticks_ms, ticks_diff
from micropython import const
from outstack.ota import link as L
from outstack.ota.store import PACKAGE, Store, free_for

WINDOW = const(8192)  # bytes the host may have in flight: enough to keep the line busy
ACK_EVERY = const(2048)
STALE_MS = const(10000)  # a push whose bytes stopped this long gives the lock up to another


async def abort(rx, link):
    store = link.store or Store()  # no push on this link: a part file left from before goes
    if rx.active is not None and rx.active is not store:
        await link.send(L.FAIL, b"not aborted: the push in progress belongs to another link")
        return
    store.discard()
    rx.active = None
    await link.send(L.FAIL, b"aborted by the host")


async def hello(rx, link):
    p = link.payload()
    if len(p) != 36:
        await link.send(L.FAIL, b"malformed HELLO")
        return
    if link.store is None:
        link.store = Store()
    store = link.store
    if not _take(rx, store):
        await link.send(L.BUSY, b"another push is in progress")
        return
    size = L.u32(p)
    store.close()
    have = 0
    free = free_for()
    if not rx.max_size:
        reason = "this link carries the console only: push updates to the OTA server"
    elif size > rx.max_size:
        reason = "package of %d bytes is over the %d-byte limit" % (size, rx.max_size)
    elif size > free:
        reason = "package of %d bytes does not fit: %d bytes of flash free" % (size, free)
    else:
        reason = None
        have = store.resume(size, p[4:36])
    if reason:
        await link.send(L.FAIL, reason.encode())
        return
    rx.last = "receiving %d bytes from %d" % (size, have)
    store.moved = ticks_ms()
    rx.active = store
    await link.send_u32(L.READY, have, WINDOW)


def _take(rx, store):
    # The push lock: free, ours, or held by a push that stopped moving (then it is void).
    a = rx.active
    if a is None or a is store:
        return True
    if ticks_diff(ticks_ms(), a.moved) < STALE_MS:
        return False
    a.close()
    rx.active = None
    return True


async def data(rx, link):
    store = link.store
    p = link.payload()
    at = L.u32(p)
    if at != store.have or store.have + len(p) - 4 > store.size:
        if at > store.have:
            await link.send_u32(L.NAK, store.have)  # a gap: a frame went missing
        return  # a duplicate: already on flash
    before = store.have
    store.write(p[4:])
    rx.received += len(p) - 4
    if store.have == store.size or before // ACK_EVERY != store.have // ACK_EVERY:
        store.sync()  # on flash before we say so
        await link.send_u32(L.ACK, store.have)


async def end(rx, link):
    why = link.store.finish()
    rx.active = None
    if why:
        rx.last = "refused: " + why
        await link.send(L.FAIL, why.encode())
        return
    said = "received %d bytes" % link.store.size
    if rx.on_package:
        said = await rx.on_package(PACKAGE)
    rx.last = said
    await link.send(L.DONE, said.encode())
