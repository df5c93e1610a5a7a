# Trusted RSA keys and the PKCS#1 v1.5 SHA-256 signature check, shared by OTA packages
# (verify.py) and signed console commands (debug/auth.py): small, so a Pico can load it alone.
# A key is (id, n, length in bytes); e is always 65537; keys of 2048 bits or more.
import hashlib
from binascii import hexlify, unhexlify
from micropython import const
from outstack.errors import ConfigError

_E = const(65537)
_MIN_KEY = const(256)  # bytes of modulus: 2048-bit keys and up
# DigestInfo for SHA-256 (RFC 8017 9.2, note 1): it sits between the padding and the hash.
_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20"


# ----- keys ---------------------------------------------------------------------------------
def key_id(modulus):
    """8 bytes naming a key: SHA-256 of its modulus (big-endian, no leading zeros)."""
    return hashlib.sha256(modulus).digest()[:8]


def load_key(entry):
    """(id, n, length in bytes) from a config entry {"n": "<hex>", "e": 65537}."""
    try:
        nb = unhexlify(entry["n"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("OTA key %r: 'n' must be the modulus in hex" % (entry,))
    i = 0
    while i < len(nb) and nb[i] == 0:
        i += 1
    nb = nb[i:]
    kid = hexlify(key_id(nb)).decode()
    if entry.get("e", _E) != _E:
        raise ConfigError("OTA key %s: exponent must be 65537" % kid)
    if entry.get("kid", kid) != kid:
        raise ConfigError("OTA key %s: its modulus is key %s (a typo in 'n'?)"
                          % (entry["kid"], kid))
    if len(nb) < _MIN_KEY:
        raise ConfigError("OTA key of %d bits: 2048 bits at least" % (len(nb) * 8))
    return key_id(nb), int.from_bytes(nb, "big"), len(nb)


def load_keys(entries):  # the config's "ota": {"keys": [...]}
    if not isinstance(entries, list) or not entries:
        raise ConfigError("'ota': 'keys' must list at least one public key")
    return [load_key(e) for e in entries]


def _names(keys):
    return ", ".join(hexlify(k[0]).decode() for k in keys) or "none"


# ----- signature ----------------------------------------------------------------------------
def _expected(digest, k):
    return b"\x00\x01" + b"\xff" * (k - 54) + b"\x00" + _DIGEST_INFO + digest


def _same(a, b):
    diff = len(a) ^ len(b)
    for i in range(min(len(a), len(b))):  # every byte, whatever differs first
        diff |= a[i] ^ b[i]
    return diff == 0


def _steps(digest, signature, key):
    # s**65537 mod n as 17 modular products (65537 = 2**16 + 1), yielding between them: one
    # pow() held the loop 0.4 s on the QEMU Cortex-M3 (bench/verify.py), a step 1/17 of it.
    _, n, k = key
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    y = s
    for _ in range(16):
        y = y * y % n
        yield
    return _same((y * s % n).to_bytes(k, "big"), _expected(digest, k))


def finish(g):
    """The value of a step generator (_steps and those built on it), run without a pause."""
    try:
        while True:
            next(g)
    except StopIteration as e:
        return e.value


async def finish_async(g):
    """finish() with a turn of the loop for other tasks after each step."""
    from asyncio import sleep_ms

    try:
        while True:
            next(g)
            await sleep_ms(0)
    except StopIteration as e:
        return e.value


def rsa_ok(digest, signature, key):
    """True if `signature` is the PKCS#1 v1.5 signature of SHA-256 `digest` by `key`."""
    return finish(_steps(digest, signature, key))


async def rsa_ok_async(digest, signature, key):
    """rsa_ok that lets the loop run other tasks between its 17 steps."""
    return await finish_async(_steps(digest, signature, key))
