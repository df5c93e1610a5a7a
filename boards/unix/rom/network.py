# `network` of the virtual board: a WLAN interface whose radio is played by the host.
# Sockets are the host's own, so a connected board reaches servers on the loopback.
import _hw

STA_IF = 0
AP_IF = 1
STAT_IDLE = 0
STAT_CONNECTING = 1
STAT_WRONG_PASSWORD = -3
STAT_NO_AP_FOUND = -2
STAT_CONNECT_FAIL = -1
STAT_GOT_IP = 3


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False
        self._status = STAT_IDLE
        self._ip = "0.0.0.0"

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self.disconnect()

    def connect(self, ssid=None, key=None, **kw):
        if not self._active:
            raise OSError("WLAN interface is not active: call active(True) first")
        reply = _hw.ask("wifi connect %s %s" % (ssid or "", key or "")).split()
        if reply[0] == "ok":
            self._status, self._ip = STAT_GOT_IP, reply[1]
        else:
            self._status, self._ip = int(reply[1]), "0.0.0.0"

    def disconnect(self):
        self._status, self._ip = STAT_IDLE, "0.0.0.0"

    def status(self, param=None):
        if param == "rssi":
            return -50
        if self._status == STAT_GOT_IP and _hw.ask("wifi up") != "yes":
            self._status, self._ip = STAT_CONNECT_FAIL, "0.0.0.0"
        return self._status

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def ifconfig(self):
        return (self._ip, "255.0.0.0", self._ip, self._ip)

    def ipconfig(self, key):
        if key == "addr4":
            return (self._ip, "255.0.0.0")
        raise ValueError("unknown ipconfig key %r" % key)

    def config(self, key):
        if key == "mac":
            return _hw.cfg["uid"].encode()[:6]
        raise ValueError("unknown config key %r" % key)

    def scan(self):
        ssid = _hw.ask("wifi scan")
        return [(ssid.encode(), b"\x02\x00\x00\x00\x00\x01", 6, -50, 3, False)] if ssid else []
