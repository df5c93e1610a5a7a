# The summary record processing hands to storage, status and uplink, and its CSV line.
# Records come from a preallocated ring: a consumer copies what it keeps past its handler.
from micropython import const

HEADER = b"seq,ms,avg,min,max,missed\n"
LINE_MAX = const(64)  # bytes: six numbers of up to 10 digits, commas and the newline


class Summary:
    def __init__(self):
        self.seq = 0  # numbers summaries since processing started
        self.ms = 0  # when it was made: ms since processing started
        self.n = 0  # samples in the window
        self.avg = self.lo = self.hi = self.last = 0
        self.missed = 0  # samples lost to lag since processing started


def put_int(buf, pos, n):
    # Digits straight into buf: "%d" % n would allocate a str for every line.
    if n < 0:
        buf[pos] = 45  # "-"
        pos += 1
        n = -n
    end = pos + _digits(n)
    i = end
    while True:
        i -= 1
        buf[i] = 48 + n % 10
        n //= 10
        if not n:
            return end


def _digits(n):
    d = 1
    while n >= 10:
        n //= 10
        d += 1
    return d


def put_line(buf, pos, s):
    """Write s as one CSV line at buf[pos:] (LINE_MAX bytes free); return the new end."""
    pos = _field(buf, pos, s.seq)  # one call per field: a tuple to loop over would allocate
    pos = _field(buf, pos, s.ms)
    pos = _field(buf, pos, s.avg)
    pos = _field(buf, pos, s.lo)
    pos = _field(buf, pos, s.hi)
    pos = _field(buf, pos, s.missed)
    buf[pos - 1] = 10  # the last comma becomes the newline
    return pos


def _field(buf, pos, n):
    pos = put_int(buf, pos, n)
    buf[pos] = 44  # ","
    return pos + 1
