"""One update package to one board over MQTT: offer, chunks in a window, resend from the
board's last ack, then its result (docs/FLEET.md). The package's signature is the board's
business: this only moves bytes."""

import hashlib
import json
import time

CHUNK = 2048
WINDOW = 8192
RETRY_S = 2.0  # no ack for this long: say it again from the board's last `have`


def send(fleet, bid: str, data: bytes, timeout: float = 120.0) -> dict:
    """Move `data` to board `bid`; return the board's result {"ok", "said", "sha"}.
    Raise TimeoutError when the board does not finish within `timeout`."""
    sha = hashlib.sha256(data).hexdigest()
    b = fleet.board(bid)
    start_n = fleet.arrivals
    end = time.monotonic() + timeout
    offer = b"O" + json.dumps({"size": len(data), "sha": sha}).encode()

    def result():
        return b.result_n > start_n and b.result.get("sha") in (sha, "") and b.result

    def acked(after):
        return b.ack_n > after and b.ack.get("sha") == sha[:16] and b.ack

    seen, have, sent_to = start_n, -1, 0
    fleet.publish(bid, "ota", offer)
    while True:
        if time.monotonic() > end:
            raise TimeoutError(f"board {bid} did not take the update within {timeout} s")
        t = time.monotonic()
        try:
            got = fleet.wait(lambda: result() or acked(seen), RETRY_S, f"board {bid}")
        except TimeoutError:
            if not fleet.connected:  # the broker is away: that time does not count
                end += time.monotonic() - t
            sent_to = max(have, 0)  # lost, or the board was away: it resumes from its have
            fleet.publish(bid, "ota", offer)
            continue
        if result():
            return dict(b.result)
        seen, last = b.ack_n, have
        have = got.get("have", 0)
        if not isinstance(have, int) or not 0 <= have <= len(data):
            continue
        if have == len(data):
            fleet.wait(result, max(1.0, end - time.monotonic()), f"board {bid}'s result")
            return dict(b.result)
        if have <= last:
            sent_to = have  # no progress: a chunk went missing, send again from there
        sent_to = max(sent_to, have)
        while sent_to < min(have + WINDOW, len(data)):
            fleet.publish(bid, "ota", b"C" + sent_to.to_bytes(4, "big") + data[sent_to:sent_to + CHUNK])
            sent_to += CHUNK
