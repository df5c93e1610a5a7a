# Device tests of OTA verification and the package reader, on packages made on the host with
# real keys (tests/device/gen_ota_verify.py writes them to /testdata): a good update verifies
# and streams; every hostile one is refused with its reason, before anything is written.
import gc
import io
import json
import os
import time
import outstack
from outstack.errors import ConfigError
from outstack.ota import package, verify
from outstack.ota.verify import OtaRejected

D = "/testdata/"
with open(D + "expect.json") as _f:
    X = json.load(_f)
SEQ = X["seq"]
ALLOW = ("app.otav_a", "app.otav_s", "app.otav_o", "app.otav_p", "app.otav_q", "app.otav_w",
         "app.otav_small", "app.otav_big")


def _keys(*names):
    return [verify.load_key(X["keys"][n]) for n in names]


TRUSTED = _keys("a")


def _policy(**kw):
    kw.setdefault("seq", SEQ - 1)
    kw.setdefault("allow", ALLOW)
    return verify.Policy(kw.pop("keys", TRUSTED), kw.pop("board", "unix"),
                         framework=outstack.__version__, **kw)


def _data(name):
    with open(D + name, "rb") as f:
        return f.read()


class _Link:
    # A stream with readinto only (no tell), like a socket or a UART.
    def __init__(self, data):
        self.b = io.BytesIO(data)

    def readinto(self, buf):
        return self.b.readinto(buf)


def _read(stream, size=None, policy=None):
    """Verify and stream a whole package: ({name: sha256 hex of the bytes}, manifest)."""
    import hashlib

    pkg = package.Package(stream, size)
    m = pkg.verify(policy or _policy())
    got = {}
    for mod in pkg.modules():
        h = hashlib.sha256()
        for chunk in mod:
            h.update(chunk)
        got[mod.name] = h.digest().hex()
    return got, m


def _read_file(name, policy=None):
    with open(D + name, "rb") as f:
        return _read(f, os.stat(D + name)[6], policy)


def _refused(code, name=None, policy=None, data=None, stream=False, words=()):
    try:
        if name:
            _read_file(name, policy)
        else:
            if stream:
                _read(_Link(data), None, policy)
            else:
                _read(io.BytesIO(data), len(data), policy)
    except OtaRejected as e:
        assert e.code == code, "%s: %s (%s), expected %s" % (name, e.code, e, code)
        for w in words:
            assert w in str(e), "%r not in %r" % (w, str(e))
        return str(e)
    raise AssertionError("%s was accepted" % (name or "the package"))


def _layout(data):
    """(manifest start, signature start, blobs start, manifest) of a package's bytes."""
    mlen, slen = data[6] | data[7] << 8, data[8] | data[9] << 8
    return 20, 20 + mlen, 20 + mlen + slen, json.loads(data[20 : 20 + mlen])


def test_valid_package_verifies_and_streams_with_correct_hashes():
    got, m = _read_file("good.pkg")
    assert got == X["sha256"], (got, X["sha256"])
    assert m["seq"] == SEQ and m["board"] == "unix"
    assert [e["path"] for e in m["modules"]] == ["/app/otav_a.mpy", "/app/otav_s.py"]
    assert [e["enc"] for e in m["modules"]] == ["zlib", "none"]
    assert _read(_Link(_data("good.pkg")))[0] == X["sha256"]  # no tell(), no size: counted


def test_a_packed_manifest_verifies_the_same_and_a_damaged_one_is_refused():
    # A packed manifest (zlib) is what the CLI sends: shorter on the line, signed as the JSON.
    got, m = _read_file("packed.pkg")
    assert got == X["sha256"] and m["seq"] == SEQ
    assert len(_data("packed.pkg")) < len(_data("good.pkg"))
    _refused("format", "packed_bad.pkg")


def test_module_facts_for_the_installer():
    with open(D + "good.pkg", "rb") as f:
        pkg = package.Package(f)
        m = pkg.verify(_policy())
        a, s = pkg.modules()
        assert (a.rel, a.twin, a.version) == ("app/otav_a.mpy", "/app/otav_a.py", "1.0.0")
        assert (s.rel, s.deps) == ("app/otav_s.py", ["app.otav_a"])
        from outstack.ota.deps import install_order

        assert [e["name"] for e in install_order(m, ALLOW)] == ["app.otav_a", "app.otav_s"]
        try:
            for _ in s:
                pass
        except ValueError as e:
            assert "manifest order" in str(e)
        else:
            raise AssertionError("read the second module first")


def test_streams_into_the_installers_stage():
    import hashlib
    from outstack.ota import install, slots

    with open(D + "good.pkg", "rb") as f:
        pkg = package.Package(f, os.stat(D + "good.pkg")[6])
        m = pkg.verify(_policy())
        top = install.write_slot(m["seq"], 0, [(mod.rel, mod) for mod in pkg.modules()])
    try:
        for e in m["modules"]:
            with open(top + e["path"], "rb") as g:
                assert hashlib.sha256(g.read()).digest().hex() == e["sha256"], e["path"]
    finally:
        slots.remove(m["seq"])


def test_modules_can_be_skipped_and_still_checked():
    with open(D + "good.pkg", "rb") as f:
        pkg = package.Package(f)
        pkg.verify(_policy())
        a, s = pkg.modules()
        a.skip()
        assert b"".join(bytes(c) for c in s) == b"# stored as it is\nVALUE = 42\n"


def test_unverified_package_gives_no_modules():
    with open(D + "good.pkg", "rb") as f:
        pkg = package.Package(f)
        try:
            pkg.modules()
        except ValueError as e:
            assert "verify()" in str(e)
        else:
            raise AssertionError("modules before verify")


def test_wrong_key():
    _refused("key", "wrongkey.pkg", words=("does not trust", X["keys"]["b"]["kid"]))
    data = bytearray(_data("wrongkey.pkg"))
    data[12:20] = bytes.fromhex(X["keys"]["a"]["kid"])  # claims the trusted key
    _refused("signature", data=data, words=("bad signature",))


def test_flipped_bit_in_the_manifest_or_signature():
    data = _data("good.pkg")
    m0, s0, b0, _ = _layout(data)
    for at in (m0, m0 + 7, (m0 + s0) // 2, s0 - 1, s0, s0 + 100, b0 - 1):
        bad = bytearray(data)
        bad[at] ^= 0x10
        _refused("signature", data=bad, words=("bad signature",))


async def _counting(work):
    """(what `work` returned, how many turns another task had while it ran)."""
    import asyncio

    turns, done = [0], [False]

    async def other():
        while not done[0]:
            turns[0] += 1
            await asyncio.sleep_ms(0)

    t = asyncio.create_task(other())
    await asyncio.sleep_ms(0)
    before = turns[0]
    try:
        got = await work()
        return got, turns[0] - before
    finally:
        done[0] = True
        await t


async def _verdict(data, stepped):
    pkg = package.Package(io.BytesIO(data), len(data))
    try:
        return await pkg.verify_async(_policy()) if stepped else pkg.verify(_policy())
    except OtaRejected as e:
        return (e.code, str(e))


async def test_the_installers_verify_lets_the_loop_run_and_agrees_with_verify():
    # One pow() held the loop for the whole RSA check (0.4 s on the QEMU Cortex-M3): the
    # installer's verify_async gives other tasks a turn between its 17 modular products.
    data = _data("good.pkg")
    m0, s0, _, _ = _layout(data)
    wrong = bytearray(_data("wrongkey.pkg"))
    wrong[12:20] = bytes.fromhex(X["keys"]["a"]["kid"])  # claims the trusted key
    # An untrusted key is refused before any math; so is another key's signature when it is
    # not below this key's modulus (the keys are made afresh for each run: about half the time).
    cases = ((data, 16), (_flip(data, m0 + 7), 16), (_flip(data, s0 + 100), 16), (wrong, 0),
             (_data("wrongkey.pkg"), 0))
    for case, least in cases:
        blocking, turns = await _counting(lambda: _verdict(case, False))
        assert turns == 0, turns  # the baseline: nothing else runs during verify()
        stepped, turns = await _counting(lambda: _verdict(case, True))
        assert stepped == blocking, (stepped, blocking)
        assert turns >= least, (turns, stepped)
    assert type(await _verdict(data, True)) is dict


async def test_one_install_at_a_time_a_second_is_told_busy():
    # The OTA server (UART1, TCP) and the fleet server (MQTT) both install through
    # apply.install; while one verifies (which now lets the loop run), another must not start.
    import asyncio
    from outstack.ota import apply, slots
    from outstack.system import System

    cfg = {"keys": [X["keys"]["a"]], "uart": False, "modules": list(ALLOW), "health_ms": 10}
    spec = {"factory": "outstack.ota.service:OtaServer", "rights": ("ota",), "config": cfg}
    s = System({"ota": spec, "ota2": dict(spec)}, config_path="/none.json", repl=False).boot()
    try:
        await asyncio.sleep_ms(10)
        one, two = s.kernel.names["ota"].server, s.kernel.names["ota2"].server
        for p in ("/one.pkg", "/two.pkg", "/again.pkg"):
            with open(p, "wb") as f:
                f.write(_data("good.pkg"))
        first, second = await asyncio.gather(apply.install(one, "/one.pkg"),
                                             apply.install(two, "/two.pkg"))
        assert first.startswith("installed update %d" % SEQ), first
        assert second.startswith("refused (busy): ota is installing"), second
        assert s.installing is None
        again = await apply.install(two, "/again.pkg")  # the board is free again
        assert again.startswith("refused (replay)"), again
        assert slots.read()[:2] == (SEQ, "good"), slots.read()
        for p in ("/one.pkg", "/two.pkg", "/again.pkg"):
            assert p[1:] not in os.listdir("/")  # every received file is let go
    finally:
        slots.use(0)
        for p in (slots.POINTER, apply.STATE):
            try:
                os.remove(p)
            except OSError:
                pass
        slots.prune(())


def _flip(data, at):
    bad = bytearray(data)
    bad[at] ^= 0x10
    return bad


def test_flipped_bit_in_a_module_every_byte():
    data = _data("good.pkg")
    _, _, b0, m = _layout(data)
    za, zs = m["modules"][0]["zsize"], m["modules"][1]["zsize"]
    for at in range(b0, b0 + za):  # the zlib blob: inflate fails, or the hash does
        bad = bytearray(data)
        bad[at] ^= 1 << (at % 8)
        _refused(("corrupt", "hash", "size", "truncated")[_code_index(bad)], data=bad)
    for at in range(b0 + za, b0 + za + zs):  # the stored blob: the hash
        bad = bytearray(data)
        bad[at] ^= 1 << (at % 8)
        _refused("hash", data=bad, words=("app.otav_s", "SHA-256"))


def _code_index(bad):
    try:
        _read(io.BytesIO(bad), len(bad))
    except OtaRejected as e:
        assert e.code in ("corrupt", "hash", "size", "truncated"), (e.code, str(e))
        return ("corrupt", "hash", "size", "truncated").index(e.code)
    raise AssertionError("a flipped bit in a module was accepted")


def test_truncated_stream_every_length():
    data = _data("good.pkg")
    for n in range(len(data)):
        _refused("truncated", data=data[:n], stream=True)  # found while streaming
        _refused("truncated", data=data[:n])  # a file: found by its length before streaming
    n = len(data)
    _refused("size", data=data + b"x", words=("%d bytes" % (n + 1), "accounts for %d" % n))


def test_replayed_update():
    _refused("replay", "good.pkg", _policy(seq=SEQ), words=("already accepted",))


def test_downgrade():
    _refused("downgrade", "good.pkg", _policy(seq=SEQ + 5), words=("older than update 15",))
    older = _policy(versions={"app.otav_a": "1.2.0"})
    _refused("downgrade", "good.pkg", older, words=("app.otav_a 1.0.0 would replace 1.2.0",))
    older.seq = SEQ
    assert _read_file("rollback.pkg", older)[1]["downgrade"] is True  # a signed rollback may


def test_wrong_board():
    _refused("board", "board.pkg", words=("'rp2040'", "'unix'"))
    _refused("board", "good.pkg", _policy(board="rp2040"))


def test_framework_too_old():
    _refused("framework", "framework.pkg", words=("99.0.0", outstack.__version__))


def test_unknown_module():
    _refused("unknown", "unknown.pkg", words=("app.evil",))
    _read_file("unknown.pkg", _policy(allow=("app.*",)))  # the whole area: it may


def test_path_traversal_and_paths_outside_the_module_area():
    with open(D + "paths.json") as f:
        paths = json.load(f)
    for i, path in enumerate(paths):
        why = _refused("path", "path_%d.pkg" % i, _policy(allow=("app.*",)))
        assert repr(path) in why, why
        if ".." in path or "//" in path or "\\" in path or "/./" in path:
            assert "not plain" in why, why


def test_oversized_declared_lengths():
    _refused("size", "oversize.pkg", words=("10000000", "limit"))
    _refused("size", "noflash.pkg", _policy(free=100000), words=("flash", "100000 are free"))
    _refused("size", "longer.pkg", words=("longer than",))
    _refused("size", "shorter.pkg")
    data = bytearray(_data("good.pkg"))
    data[6], data[7] = 0xFF, 0x7F  # a 32 KB manifest: refused before it is read
    _refused("size", data=data, words=("manifest of 32767 bytes",))
    data = bytearray(_data("good.pkg"))
    data[8], data[9] = 0x00, 0x10
    _refused("size", data=data, words=("signature of 4096 bytes",))
    for at in (4, 5, 10, 11):  # another format, flags, reserved: this board cannot know them
        data = bytearray(_data("good.pkg"))
        data[at] ^= 2
        _refused("format", data=data, words=("format",))


def test_zlib_window_stays_1kb():
    _refused("corrupt", "widewindow.pkg", words=("app.otav_w",))


def test_malformed_manifests():
    with open(D + "malformed.json") as f:
        n = json.load(f)
    for i in range(n):
        why = _refused("malformed", "malformed_%d.pkg" % i)
        assert why.startswith("malformed manifest") or "format" in why, why


def test_dependencies():
    _refused("deps", "deps_cycle.pkg", words=("cycle", "app.otav_p -> app.otav_q -> app.otav_p"))
    _refused("deps", "deps_unknown.pkg", words=("outstack.kernel",))


def _noise(n):
    # Random bytes: os.urandom where the port has it (the QEMU firmware leaves it out), else
    # the random module's generator, seeded from the clock.
    if hasattr(os, "urandom"):
        return os.urandom(n)
    import random

    return bytes(random.getrandbits(8) for _ in range(n))


def test_random_bytes():
    import random

    random.seed(time.ticks_us())
    for n in (0, 3, 19, 20, 200, 5000):
        _refused("truncated" if n < 20 else "format", data=_noise(n), stream=True)
    for _ in range(20):
        data = b"OSOT\x01\x00" + _noise(4) + b"\x00\x00" + _noise(600)
        try:
            _read(io.BytesIO(data), len(data))
        except OtaRejected as e:
            assert e.code in ("size", "truncated", "key", "signature"), (e.code, str(e))
        else:
            raise AssertionError("random bytes were accepted")


def test_new_key_only_when_signed_by_a_trusted_key():
    _refused("key", "bynew.pkg", _policy(seq=SEQ + 1))
    _refused("key", "keys_forged.pkg", words=(X["keys"]["b"]["kid"],))
    _refused("replay", "keys_replayed.pkg", _policy(seq=SEQ))
    _, m = _read_file("keys.pkg")
    keys = verify.accept_keys(m)
    assert [k[0].hex() for k in keys] == [X["keys"]["new"]["kid"]]
    _read_file("bynew.pkg", _policy(keys=keys, seq=m["seq"]))
    _refused("key", "good.pkg", _policy(keys=keys))  # the old key is no longer trusted
    try:
        verify.accept_keys(_read_file("good.pkg")[1])
    except OtaRejected as e:
        assert e.code == "malformed"
    else:
        raise AssertionError("an update taken as a key statement")


def test_openssl_signed_manifest_verifies():
    got, m = _read_file("openssl.pkg")
    assert list(got) == ["app.otav_o"] and m["modules"][0]["version"] == "2.0.0"


def test_keys_from_config():
    entry = X["keys"]["a"]
    assert verify.load_key(entry)[0].hex() == entry["kid"]
    bad = [({"n": X["k1024"]["n"]}, "1024 bits"), (dict(entry, e=3), "65537"),
           ({"n": "xyz"}, "in hex"), (dict(entry, kid="00" * 8), "typo"), ({}, "in hex")]
    for e, words in bad:
        try:
            verify.load_key(e)
        except ConfigError as err:
            assert words in str(err), (words, str(err))
        else:
            raise AssertionError("key %r accepted" % e)
    for entries in ([], None):
        try:
            verify.load_keys(entries)
        except ConfigError:
            pass
        else:
            raise AssertionError("no keys accepted")


def _peak_alloc(name):
    """Most bytes allocated (nothing collected) at any chunk while streaming `name`."""
    with open(D + name, "rb") as f:
        pkg = package.Package(f, os.stat(D + name)[6])
        pkg.verify(_policy(seq=SEQ))
        mods = pkg.modules()
        gc.collect()
        gc.disable()
        try:
            base, peak, n = gc.mem_alloc(), 0, 0
            for mod in mods:
                for chunk in mod:
                    n += len(chunk)
                    peak = max(peak, gc.mem_alloc() - base)
        finally:
            gc.enable()
    return peak, n


def test_reader_ram_stays_flat():
    for suffix in ("", "_stored"):
        small, ns = _peak_alloc("small%s.pkg" % suffix)
        big, nb = _peak_alloc("big%s.pkg" % suffix)
        print("OTA reader RAM%s: %d B for a %d B module, %d B for %d B"
              % (suffix, small, ns, big, nb))
        assert nb == 40960 and ns == 4096
        assert big < 6144, big  # the inflate window and state, a hash, a counter: not the module
        assert big - small < 512, (small, big)  # nothing grows with the module's size


def _best_us(fn, rounds=5):
    best = None
    for _ in range(rounds):
        t = time.ticks_us()
        fn()
        d = time.ticks_diff(time.ticks_us(), t)
        best = d if best is None or d < best else best
    return best


def test_verification_time_by_key_size():
    data = _data("good.pkg")
    _, s0, b0, _ = _layout(data)
    man, sig = data[20:s0], data[s0:b0]
    data3 = _data("k3072.pkg")
    _, s3, b3, _ = _layout(data3)
    n = bytes.fromhex(X["k1024"]["n"])
    k1024 = (b"", int.from_bytes(n, "big"), len(n))
    digest = __import__("hashlib").sha256(man).digest()
    assert verify.rsa_ok(digest, bytes.fromhex(X["k1024"]["sig"]), k1024)
    assert not verify.rsa_ok(digest, sig, k1024)
    cases = ((1024, lambda: verify.rsa_ok(digest, bytes.fromhex(X["k1024"]["sig"]), k1024)),
             (2048, lambda: verify.verify_signature(man, sig, TRUSTED)),
             (3072, lambda: verify.verify_signature(data3[20:s3], data3[s3:b3], _keys("c"))))
    for bits, fn in cases:
        print("OTA verify: %d-bit key %.2f ms" % (bits, _best_us(fn) / 1000))
    _refused("key", data=data3)  # a 3072-bit signature, the 2048-bit key trusted
