"""Host side of tests/device/test_ota_verify.py: real keys, real packages (and hostile ones)
made with outstack's packer, cryptography and the openssl binary, written to /testdata on the
board by tests/device/conftest.py before the image is built."""

import json
import os
import random
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from outstack.ota import keys as K
from outstack.ota import pack as P
from outstack.ota.container import Container, manifest_bytes

BOARD = "unix"
SEQ = 10
SMALL = 'from outstack.server import Server\n__version__ = "1.0.0"\n\n\nclass A(Server):\n' \
        '    def handle_call(self, msg, arg):\n        return "a"\n'
STORED = '# stored as it is\nVALUE = 42\n'
HOSTILE_PATHS = ["../boot.py", "/boot.py", "/app/../boot.py", "/app//evil.py", "/app\\evil.py",
                 "/lib/outstack/kernel.py", "/app/./evil.py", "app/evil.py", "/app/evil.txt",
                 "/app/1evil.py", "/application/evil.py"]


def _text_module(size: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    lines, total = [], 0
    while total < size:
        line = f"V{len(lines)} = {rnd.getrandbits(96):#x}  # {'x' * rnd.randrange(30)}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size - 1] + b"\n"


def _compiled(src: bytes, rel: str, work: Path) -> bytes:
    host = work / rel.replace("/", "_")
    host.write_bytes(src)
    return P.module_bytes(P.Source(host, rel), BOARD, False, work)[1]


def _entry(name, data, compress=True, version="1.0.0", deps=(), path=None, ext=".py"):
    enc, z = P.blob(data, compress)
    path = path or "/" + name.replace(".", "/") + ext
    return P.entry(name, path, version, data, enc, z, list(deps)), z


def _update(entries, seq=SEQ, **fields):
    m = P.update_manifest(BOARD, seq, "0.1.0", [e for e, _ in entries])
    m.update(fields)
    return m, b"".join(z for _, z in entries)


def _write(out: Path, name: str, manifest, blobs: bytes, key, packed=False) -> None:
    # (unpacked unless asked: the vectors flip bits at known places of the manifest's JSON)
    raw = manifest if isinstance(manifest, bytes) else manifest_bytes(manifest)
    box = Container(raw, K.sign(key, raw), K.key_id(key.public_key()), blobs, packed)
    (out / name).write_bytes(box.to_bytes())


def generate(out: Path) -> None:
    work = out.parent / "gen-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    ks = {n: K.generate(b) for n, b in (("a", 2048), ("b", 2048), ("new", 2048), ("c", 3072))}
    k1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # timing only
    a = _entry("app.otav_a", _compiled(SMALL.encode(), "app/otav_a.py", work), ext=".mpy")
    s = _entry("app.otav_s", STORED.encode(), compress=False, deps=["app.otav_a"])
    good, blobs = _update([a, s])
    _write(out, "good.pkg", good, blobs, ks["a"])
    _write(out, "packed.pkg", good, blobs, ks["a"], packed=True)
    data = (out / "packed.pkg").read_bytes()
    (out / "packed_bad.pkg").write_bytes(data[:25] + bytes([data[25] ^ 0xFF]) + data[26:])
    _write(out, "k3072.pkg", good, blobs, ks["c"])
    _write(out, "wrongkey.pkg", good, blobs, ks["b"])
    _policy_vectors(out, ks["a"], a, s)
    _path_and_size_vectors(out, ks["a"], s)
    _length_vectors(out, ks["a"], a)
    _malformed_vectors(out, ks["a"], a, s)
    _ram_vectors(out, ks["a"])
    _key_vectors(out, ks, a)
    _openssl_vector(out, work, ks["a"])
    expect = {"keys": {n: K.public_entry(k.public_key()) for n, k in ks.items()},
              "k1024": {"n": K.modulus_bytes(k1024.public_key()).hex(),
                        "sig": K.sign(k1024, manifest_bytes(good)).hex()},
              "sha256": {e["name"]: e["sha256"] for e in good["modules"]},
              "seq": SEQ}
    (out / "expect.json").write_text(json.dumps(expect))
    shutil.rmtree(work, ignore_errors=True)


def _policy_vectors(out, key, a, s):
    _write(out, "board.pkg", *_with(_update([a, s]), board="rp2040"), key)
    _write(out, "framework.pkg", *_with(_update([a, s]), framework="99.0.0"), key)
    _write(out, "rollback.pkg", *_update([a, s], seq=SEQ + 1, downgrade=True), key)
    _write(out, "unknown.pkg", *_update([a, _entry("app.evil", b"x = 1\n")]), key)
    cyc = [_entry("app.otav_p", b"p = 1\n", deps=["app.otav_q"]),
           _entry("app.otav_q", b"q = 1\n", deps=["app.otav_p"])]
    _write(out, "deps_cycle.pkg", *_update(cyc), key)
    _write(out, "deps_unknown.pkg", *_update([_entry("app.otav_p", b"p=1\n",
                                                     deps=["outstack.kernel"])]), key)


def _with(pair, **fields):
    m, blobs = pair
    m.update(fields)
    return m, blobs


def _path_and_size_vectors(out, key, s):
    for i, path in enumerate(HOSTILE_PATHS):
        e, z = _entry("app.evil", b"import os\n", path=path)
        _write(out, f"path_{i}.pkg", *_update([(e, z)]), key)
    (out / "paths.json").write_text(json.dumps(HOSTILE_PATHS))
    e, z = s
    big = dict(e, size=10_000_000)
    _write(out, "oversize.pkg", *_update([(big, z)]), key)
    e2 = dict(e, size=150_000, zsize=len(z))
    _write(out, "noflash.pkg", *_update([(e2, z)]), key)

def _length_vectors(out, key, a):
    e, z = a
    _write(out, "longer.pkg", *_update([(dict(e, size=e["size"] - 5), z)]), key)
    _write(out, "shorter.pkg", *_update([(dict(e, size=e["size"] + 5), z)]), key)
    data = bytes(range(256)) * 4 + b"different" * 100 + bytes(range(256)) * 4
    c = zlib.compressobj(9, zlib.DEFLATED, 15)  # far matches: needs more than a 1 KB window
    wide = c.compress(data) + c.flush()
    entry = P.entry("app.otav_w", "/app/otav_w.py", "1.0.0", data, "zlib", wide, [])
    _write(out, "widewindow.pkg", *_update([(entry, wide)]), key)


def _malformed_vectors(out, key, a, s):
    m, blobs = _update([a, s])
    cases = [b"{not json", b"[1, 2]", _without(m, "seq"), dict(m, seq="11"), dict(m, seq=True),
             dict(m, modules={"a": 1}), dict(m, v=2), dict(m, type="other"),
             _without(m, "framework"), dict(m, framework="new"),
             dict(m, modules=[_without(m["modules"][0], "sha256")]),
             dict(m, modules=[dict(m["modules"][0], sha256="ab" * 31)]),
             dict(m, modules=[dict(m["modules"][0], version="one")]),
             dict(m, modules=[dict(m["modules"][0], enc="lzma")]),
             dict(m, modules=[dict(m["modules"][0], deps="app.otav_s")]),
             dict(m, modules=[dict(m["modules"][0], size=-1)]),
             dict(m, modules=[m["modules"][0], m["modules"][0]]),
             dict(m, modules=[]), dict(m, modules=["app.otav_a"]),
             dict(m, modules=[dict(m["modules"][0], name="app.other")])]
    for i, case in enumerate(cases):
        _write(out, f"malformed_{i}.pkg", case, blobs, key)
    (out / "malformed.json").write_text(json.dumps(len(cases)))


def _without(d, field):
    return {k: v for k, v in d.items() if k != field}


def _ram_vectors(out, key):
    for name, size in (("small", 4096), ("big", 40960)):
        data = _text_module(size, size)
        for suffix, compress in (("", True), ("_stored", False)):
            m, blobs = _update([_entry("app.otav_" + name, data, compress=compress)], seq=SEQ + 1)
            _write(out, f"{name}{suffix}.pkg", m, blobs, key)


def _key_vectors(out, ks, a):
    _write(out, "keys.pkg", P.keys_manifest(BOARD, SEQ + 1, [ks["new"].public_key()]), b"", ks["a"])
    _write(out, "keys_forged.pkg", P.keys_manifest(BOARD, SEQ + 1, [ks["b"].public_key()]), b"",
           ks["b"])
    _write(out, "keys_replayed.pkg", P.keys_manifest(BOARD, SEQ, [ks["b"].public_key()]), b"",
           ks["a"])
    _write(out, "bynew.pkg", *_update([a], seq=SEQ + 2), ks["new"])


def _openssl_vector(out, work, key):
    """The documented path: pack --unsigned, `openssl dgst -sign`, ota sign."""
    (work / "ota-key.pem").write_bytes(K.private_pem(key))
    (work / "ota-pub.pem").write_bytes(K.public_pem(key.public_key()))
    mod = work / "otav_o.py"
    mod.write_text('__version__ = "2.0.0"\nGREETING = "signed with openssl"\n')
    cli = [str(Path(sys.executable).parent / "outstack"), "ota"]
    pkg = work / "openssl.pkg"
    _run(cli + ["pack", "--unsigned", "--board", BOARD, "--seq", str(SEQ), "--out", str(pkg),
                f"{mod}=app/otav_o.py"])
    _run(["openssl", "dgst", "-sha256", "-sign", str(work / "ota-key.pem"), "-out",
          str(work / "openssl.sig"), str(work / "openssl.pkg.manifest.json")])
    _run(cli + ["sign", str(pkg), "--signature", str(work / "openssl.sig"), "--pub",
                str(work / "ota-pub.pem")])
    shutil.copyfile(pkg, out / "openssl.pkg")


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")
