# The fleet server's MQTT link, opened without blocking the board: the TCP connect, the
# CONNECT and the CONNACK go through asyncio, each bounded by connect_ms; afterwards every
# write is non-blocking (a broker that stops reading drops the link instead of the board).
import asyncio
import socket


def _put(b, s):
    b.extend(len(s).to_bytes(2, "big"))
    b.extend(s)


def packet(kind, body):
    head = bytearray((kind,))
    n = len(body)
    while True:
        d = n & 0x7F
        n >>= 7
        head.append(d | 0x80 if n else d)
        if not n:
            return head + body


def hello(cid, keepalive, will_topic, will_msg):
    # MQTT 3.1.1 CONNECT: clean session, a retained QoS 0 last will.
    b = bytearray(b"\x00\x04MQTT\x04\x26")
    b.extend(keepalive.to_bytes(2, "big"))
    _put(b, cid)
    _put(b, will_topic)
    _put(b, will_msg)
    return packet(0x10, b)


def subscribe(topic, pid):
    b = bytearray(pid.to_bytes(2, "big"))
    _put(b, topic)
    b.append(0)
    return packet(0x82, b)


async def dial(host, port, first, ms):
    # A non-blocking socket connected to host:port that has sent `first`; it is closed
    # again on any failure (refused, unreachable, nothing within ms).
    from errno import EINPROGRESS

    ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]  # an address: no DNS
    s = socket.socket(ai[0], ai[1], ai[2])
    try:
        s.setblocking(False)
        try:
            s.connect(ai[-1])
        except OSError as e:
            if e.args[0] != EINPROGRESS:
                raise
        w = asyncio.StreamWriter(s)
        w.write(first)
        await asyncio.wait_for_ms(w.drain(), ms)
    except BaseException:
        s.close()
        raise
    return s


class Feed:
    # The broker's socket as umqtt sees it: reads come from the packet asyncio took whole;
    # writes never block (one the socket cannot take at once cuts the link).
    def __init__(self, sock, mv):
        self.sock = sock
        self.mv = mv
        self.at = self.end = 0

    def load(self, n):
        self.at, self.end = 0, n

    def read(self, n=1):
        a = self.at
        if n < 0 or a + n > self.end:
            raise OSError("malformed packet from the broker")
        self.at = a + n
        return bytes(self.mv[a : a + n])

    def write(self, data, n=None):
        if n is not None and n != len(data):
            data = memoryview(data)[:n]
        k = self.sock.write(data)
        if k != len(data):
            raise OSError("broker not reading: link dropped")
        return k

    def setblocking(self, flag):
        pass  # reads never block here: the packet is already in memory

    def close(self):
        self.sock.close()
