# Who may change the board through the console on a link (UART1, TCP). A command that is
# not read-only carries an RSA signature (PKCS#1 v1.5, SHA-256, as OTA packages) by a key
# the board trusts, over a fresh challenge from this board and the command itself:
#   challenge                                -> {"nonce": "<32 hex>"} (single use, short-lived)
#   signed <nonce hex> <key id hex> <signature base64> <command words...>
#   signed bytes: b"outstack-console\n" + nonce + b"\n" + command (words joined by one space)
# Keys: the link server's config "console_keys", else the OTA keys (rotated ones first).
# The USB REPL needs no signature: whoever holds it can already run any code on the board.
from micropython import const
from outstack.errors import OutstackError

_KEEP = const(4)  # challenges outstanding at once (one per host asking, roughly)
_TTL_MS = const(30000)  # a challenge not used within this is void
_NONCE = const(16)
# read-only commands (trace and crashes with no argument only read, too)
READS = ("help", "servers", "info", "log", "graph", "recording", "mem", "challenge")
NEEDED = "signature required"
_OTA_STATE = "/.outstack/ota/state.json"  # outstack.ota.apply.STATE (not imported: RAM)  # the host's CLI signs and asks again when it reads this


class Refused(OutstackError):
    pass


def is_read(words):
    return words[0] in READS or (words[0] in ("trace", "crashes") and len(words) == 1)


def message(nonce, command):
    return b"outstack-console\n" + nonce + b"\n" + command.encode()


class Auth:
    def __init__(self, nonces=None):
        self.nonces = [] if nonces is None else nonces  # [(nonce, ticks_ms issued)], oldest first

    def challenge(self):
        from os import urandom
        from time import ticks_ms

        if len(self.nonces) >= _KEEP:
            self.nonces.pop(0)
        n = urandom(_NONCE)
        self.nonces.append((n, ticks_ms()))
        return {"nonce": n.hex()}

    def _take(self, nonce):
        # The challenge is spent whatever follows: a captured command never works twice.
        from time import ticks_ms, ticks_diff

        for i, (n, t) in enumerate(self.nonces):
            if n == nonce:
                self.nonces.pop(i)
                return ticks_diff(ticks_ms(), t) <= _TTL_MS
        return None

    async def check(self, words, keys):
        """The command a signed line carries, once its signature holds; else Refused."""
        from binascii import a2b_base64, unhexlify
        import hashlib

        if len(words) < 5:
            raise Refused("a signed command is: signed NONCE KEY-ID SIGNATURE COMMAND...")
        try:
            nonce, kid, sig = unhexlify(words[1]), unhexlify(words[2]), a2b_base64(words[3])
        except ValueError:
            raise Refused("a signed command's nonce and key id are hex, its signature base64")
        command = " ".join(words[4:])
        fresh = self._take(nonce)
        if fresh is None:
            raise Refused("replay: challenge %s was not issued by this board or was already "
                          "used: ask a fresh one" % words[1])
        if not fresh:
            raise Refused("challenge %s expired: ask a fresh one" % words[1])
        if not keys:
            raise Refused("this board trusts no console key: set console_keys or OTA keys")
        from outstack.ota.rsa import rsa_ok_async

        digest = hashlib.sha256(message(nonce, command)).digest()
        for k in keys:
            if k[0] == kid:
                if await rsa_ok_async(digest, sig, k):
                    return command
                raise Refused("bad signature by key %s: the command was altered, or signed over "
                              "another challenge" % words[2])
        raise Refused("signed by key %s, which this board does not trust (it trusts %s)"
                      % (words[2], ", ".join(k[0].hex() for k in keys)))


def keys_for(system, config):
    """The keys that may sign console commands on a link served with `config`."""
    from outstack.ota.rsa import load_keys

    entries = config.get("console_keys")
    if not entries:
        from outstack import crashlog
        st = crashlog.load_sealed(_OTA_STATE)[0]
        entries = st.get("keys") if isinstance(st, dict) else None
    if not entries:
        p = system.kernel.names.get("ota")
        cfg = getattr(p.server, "config", None) if p is not None else None
        entries = cfg.get("keys") if isinstance(cfg, dict) else None
    return load_keys(entries) if entries else []


async def admit(console, config, line):
    """The command to run for `line` from a link, or Refused: state changes need a
    signature; reads are open unless the link's config says "console_reads": false."""
    words = line.split()
    if not words:
        raise ValueError("empty command: try help")
    if words[0] == "signed":
        return await of(console).check(words, keys_for(console.system, config))
    if words[0] == "challenge":
        return line
    if not is_read(words):
        raise Refused("%s: %s: %r changes the board's state; sign it with a trusted key "
                      "(outstack console --key KEY)" % (NEEDED, words[0], words[0]))
    if config.get("console_reads", True) is False:
        raise Refused("%s: reading is not open on this link; sign every command (outstack "
                      "console --key KEY)" % NEEDED)
    return line


def of(console):
    """console.auth, made on first need over the System's nonce list: the challenges
    outlive the console's code, which goes between commands (console._let_go)."""
    if console.auth is None:
        system = console.system
        nonces = getattr(system, "nonces", None)
        if nonces is None:
            nonces = system.nonces = []
        console.auth = Auth(nonces)
    return console.auth
