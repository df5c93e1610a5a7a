"""OTA signing keys on the host: RSA, e = 65537, PKCS#1 v1.5 signatures over SHA-256.

The private key is a PKCS#8 PEM file (mode 0600) that `openssl` reads as it is; the board holds
public keys only, as {"kid", "n" (modulus, hex), "e", "bits"} entries of /config.json's
"ota": {"keys": [...]} (see lib/outstack/ota/verify.py)."""

import hashlib
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import CliError

E = 65537
SIZES = (2048, 3072, 4096)
DEFAULT_BITS = 2048  # verify time on the board: see bench/verify.py and the OTA docs
PRIVATE = "ota-key.pem"
PUBLIC_PEM = "ota-pub.pem"
PUBLIC_JSON = "ota-pub.json"


def generate(bits: int = DEFAULT_BITS) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=E, key_size=bits)


def modulus_bytes(pub: rsa.RSAPublicKey) -> bytes:
    n = pub.public_numbers().n
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def key_id(pub: rsa.RSAPublicKey) -> bytes:
    """8 bytes naming a key, as the board computes them: SHA-256 of the modulus."""
    return hashlib.sha256(modulus_bytes(pub)).digest()[:8]


def public_entry(pub: rsa.RSAPublicKey) -> dict:
    """The key as the board's config holds it."""
    return {"kid": key_id(pub).hex(), "n": modulus_bytes(pub).hex(), "e": pub.public_numbers().e,
            "bits": pub.key_size}


def sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verifies(pub: rsa.RSAPublicKey, data: bytes, signature: bytes) -> bool:
    try:
        pub.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(pub: rsa.RSAPublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def write_keys(key: rsa.RSAPrivateKey, out: Path, force: bool = False) -> dict[str, Path]:
    """Write the three key files into `out`; the private one is created 0600."""
    out = Path(out)
    paths = {"private": out / PRIVATE, "pem": out / PUBLIC_PEM, "json": out / PUBLIC_JSON}
    if paths["private"].exists() and not force:
        raise CliError(f"{paths['private']} already exists: keep it (a board trusts it), or "
                       f"pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)
    paths["private"].unlink(missing_ok=True)
    fd = os.open(paths["private"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem(key))
    os.chmod(paths["private"], 0o600)  # whatever the umask made of it
    paths["pem"].write_bytes(public_pem(key.public_key()))
    paths["json"].write_text(json.dumps(public_entry(key.public_key()), indent=2) + "\n")
    return paths


def _read(path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror}") from None


def load_private(path) -> rsa.RSAPrivateKey:
    data = _read(path, "key file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CliError(f"{path} is not an unencrypted PEM private key ({_first(e)}): make one "
                       f"with `outstack ota keygen`") from None
    return _rsa(key, path)


def load_public(path) -> rsa.RSAPublicKey:
    """A public key from a PEM file (public or private key) or an ota-pub.json entry."""
    data = _read(path, "key file")
    if data.lstrip().startswith(b"{"):
        return _from_entry(data, path)
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        return load_private(path).public_key()
    return _rsa(key, path)


def _from_entry(data: bytes, path) -> rsa.RSAPublicKey:
    try:
        entry = json.loads(data)
        return rsa.RSAPublicNumbers(int(entry.get("e", E)), int(entry["n"], 16)).public_key()
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CliError(f"{path} is not a public key entry like ota-pub.json "
                       f'({{"n": "<hex>", "e": 65537}})') from None


def _rsa(key, path):
    if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        raise CliError(f"{path} is not an RSA key: OTA signatures are RSA (PKCS#1 v1.5, SHA-256)")
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if pub.public_numbers().e != E:
        raise CliError(f"{path} has exponent {pub.public_numbers().e}: boards verify e = {E} only")
    if key.key_size < SIZES[0]:
        raise CliError(f"{path} is a {key.key_size}-bit key: boards accept {SIZES[0]} bits or more")
    return key


def _first(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
