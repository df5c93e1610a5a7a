# Verify an update before anything changes. Nothing of the manifest is parsed until its
# signature verifies with a trusted key; then the policy checks run, each refusal one
# OtaRejected whose .code names the check and whose message says what was wrong.
#
# Signature: RSA PKCS#1 v1.5 with SHA-256 over the manifest's exact bytes, e = 65537, keys of
# 2048 bits or more. Verifying is one pow(s, 65537, n); the expected encoded block
# EM = 00 01 FF..FF 00 || DigestInfo(SHA-256) || H is rebuilt and compared whole (never parsed),
# so `openssl dgst -sha256 -sign key.pem -out manifest.sig manifest.json` signatures verify too.
#
# Manifest (UTF-8 JSON, made by `outstack ota pack`):
#   {"v": 1, "type": "update", "board": "rp2040", "seq": 7, "framework": "0.1.0",
#    "modules": [{"name": "app.sensor", "path": "/app/sensor.mpy", "version": "1.2.0",
#                 "size": 2210, "zsize": 1403, "enc": "zlib", "sha256": "<64 hex>",
#                 "deps": ["app.storage"]}]}
#   size/sha256: of the bytes written to flash; zsize: of the blob in the package; enc "zlib"
#   (window <= 1 KB) or "none". A module's name is its path under the root without the suffix
#   ("/app/__init__.py" is "app"). "downgrade": true lets module versions go down (a signed
#   rollback). A key statement is {"v": 1, "type": "keys", "board", "seq", "keys": [...]}:
#   the complete new list of trusted keys, signed by a key trusted now (see accept_keys).
#
# For the installer (staging/swap), with outstack.ota.package:
#   keys = load_keys(cfg["ota"]["keys"])           # once; ConfigError for a bad entry
#   policy = Policy(keys, board.NAME, seq=last_accepted_seq, framework=outstack.__version__,
#                   allow=cfg["ota"].get("modules", ("app.*",)), versions={name: version},
#                   free=bytes_of_flash_the_stage_may_use)
#   m = pkg.verify(policy)                         # OtaRejected, or the checked manifest
#   m = await pkg.verify_async(policy)             # the same, yielding to the loop meanwhile
#   deps.install_order(m): its modules, dependencies first. Persist m["seq"] as the last accepted
#   seq (even if rolled back: never take it again), and accept_keys(m) of a "keys" manifest.
import hashlib
import json
import os
from binascii import hexlify, unhexlify
from micropython import const
from outstack.errors import ConfigError, OutstackError
from outstack.ota.rsa import key_id, load_key, load_keys, rsa_ok, _names, _same  # noqa: F401
from outstack.ota.rsa import finish, finish_async, _steps

_MAX_MODULES = const(32)
MAX_MODULE = const(262144)  # bytes of one module, whatever flash is free
_MARGIN = const(8192)  # flash left free once the update is staged


class OtaRejected(OutstackError):
    # An update refused before anything changed: .code names the check, the message says why.
    def __init__(self, code, text):
        super().__init__(text)
        self.code = code


# ----- signature ----------------------------------------------------------------------------
def _signed(manifest, signature, keys, kid):
    # A step generator (rsa.finish): the trusted key that signed `manifest`, or OtaRejected.
    if not signature:
        raise OtaRejected("signature", "the package is not signed: sign it (outstack ota sign)")
    cands = [k for k in keys if kid is None or k[0] == kid]
    if not cands:
        raise OtaRejected("key", "signed by key %s, which this board does not trust (it trusts %s)"
                          % (hexlify(kid or b"").decode(), _names(keys)))
    digest = hashlib.sha256(manifest).digest()
    for key in cands:
        if (yield from _steps(digest, signature, key)):
            return key
    raise OtaRejected("signature", "bad signature: the manifest was altered, or key %s did not "
                      "sign it" % _names(cands))


def verify_signature(manifest, signature, keys, kid=None):
    """The trusted key that signed `manifest` (the key named `kid` if given)."""
    return finish(_signed(manifest, signature, keys, kid))


# ----- manifest -----------------------------------------------------------------------------
def _get(d, field, kind, where):
    v = d.get(field)
    if not isinstance(v, kind) or isinstance(v, bool):
        what = "a whole number" if kind is int else "a list" if kind is list else "a string"
        raise OtaRejected("malformed", "malformed manifest: %s needs %r as %s, has %r"
                          % (where, field, what, v))
    return v


def version(text, where):
    """'1.2.3' -> (1, 2, 3)."""
    parts = text.split(".") if isinstance(text, str) else ()
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise OtaRejected("malformed", "malformed manifest: %s: version %r is not like 1.2.3"
                          % (where, text))
    return tuple(int(p) for p in parts)


def parse(manifest):
    """The manifest as a dict, its fields of the right types (call only once signed)."""
    try:
        m = json.loads(manifest)
    except (ValueError, UnicodeError):
        raise OtaRejected("malformed", "malformed manifest: not valid JSON")
    if not isinstance(m, dict):
        raise OtaRejected("malformed", "malformed manifest: not a JSON object")
    if _get(m, "v", int, "the manifest") != 1:
        raise OtaRejected("malformed", "manifest format %r: this board reads format 1" % m["v"])
    kind = _get(m, "type", str, "the manifest")
    _get(m, "board", str, "the manifest")
    _get(m, "seq", int, "the manifest")
    if kind == "keys":
        _get(m, "keys", list, "the key statement")
        m["modules"] = []
    elif kind == "rollback":  # put the previous version of one module back
        _get(m, "module", str, "the rollback request")
        m["modules"] = []
    elif kind == "update":
        version(_get(m, "framework", str, "the manifest"), "framework")
        for i, e in enumerate(_get(m, "modules", list, "the manifest")):
            _module(e, "module %d" % i)
    else:
        raise OtaRejected("malformed", "malformed manifest: unknown type %r" % kind)
    return m


def _module(e, where):
    if not isinstance(e, dict):
        raise OtaRejected("malformed", "malformed manifest: %s is not an object" % where)
    where = repr(_get(e, "name", str, where))
    for f in ("path", "version", "enc", "sha256"):
        _get(e, f, str, where)
    if _get(e, "size", int, where) < 0 or _get(e, "zsize", int, where) < 0:
        raise OtaRejected("malformed", "malformed manifest: %s: a negative length" % where)
    deps = e.setdefault("deps", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise OtaRejected("malformed", "malformed manifest: %s: 'deps' must list names" % where)
    version(e["version"], where)
    if e["enc"] not in ("zlib", "none"):
        raise OtaRejected("malformed", "malformed manifest: %s: unknown encoding %r"
                          % (where, e["enc"]))
    try:
        e["digest"] = unhexlify(e["sha256"])
    except ValueError:
        e["digest"] = b""
    if len(e["digest"]) != 32:
        raise OtaRejected("malformed", "malformed manifest: %s: sha256 is not 64 hex digits"
                          % where)


# ----- paths --------------------------------------------------------------------------------
_NAME_MAX = const(64)  # characters in one part of a module path (LittleFS stops at 255)


def _ident(s):
    if not s or len(s) > _NAME_MAX or s[0].isdigit():
        return False
    for c in s:
        if not (c.isalpha() or c.isdigit() or c == "_"):
            return False
    return True


def module_of(path, area):
    """The module name of a board path in the module area, else OtaRejected("path")."""
    if "\\" in path or "//" in path or "/./" in path or "/../" in path or path.startswith(".."):
        raise OtaRejected("path", "module path %r is not plain: no '..', '.', '//' or '\\' "
                          "(it would leave the module area %s)" % (path, area))
    if not path.startswith(area + "/"):
        raise OtaRejected("path", "module path %r is outside the module area %s" % (path, area))
    dot = path.rfind(".")
    ext = path[dot + 1 :] if dot > 0 else ""
    parts = path[1:dot].split("/")
    if ext not in ("py", "mpy") or not all(_ident(p) for p in parts):
        raise OtaRejected("path", "module path %r: folders and file must be Python names of at "
                          "most %d characters, the file ending .py or .mpy" % (path[:100], _NAME_MAX))
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def allowed(name, allow):
    for pat in allow:
        if pat == name or (pat.endswith(".*") and (name == pat[:-2] or name.startswith(pat[:-1]))):
            return True
    return False


# ----- policy -------------------------------------------------------------------------------
class Policy:
    # What this board accepts; see the top of this file for where each value comes from.
    def __init__(self, keys, board, seq=0, framework="0.0.0", area="/app", allow=("app.*",),
                 versions=None, free=None, max_module=MAX_MODULE):
        self.keys = keys
        self.board = board
        self.seq = seq  # the last accepted update: only a greater one is taken
        self.framework = framework  # this board's, e.g. outstack.__version__
        self.fw = version(framework, "this board's framework")
        self.area = area
        self.allow = allow
        self.versions = versions or {}  # installed module versions, for downgrades
        self.free = free  # None: what statvfs("/") says is free
        self.max_module = max_module

    def check(self, m):
        self._target(m)
        if m["type"] == "rollback" and not all(_ident(p) for p in m["module"].split(".")):
            raise OtaRejected("path", "rollback of %r: a module name is Python names joined by "
                              "dots, each at most %d characters" % (m["module"][:100], _NAME_MAX))
        if m["type"] == "rollback" and not allowed(m["module"], self.allow):
            raise OtaRejected("unknown", "no module %r in this board's module area" % m["module"])
        if m["type"] == "update":
            need = [self._entry(e) for e in m["modules"]]
            self._sizes(m, sum(need))
            self._versions(m)
            from outstack.ota.deps import install_order

            install_order(m, self.allow, self.versions)

    def _target(self, m):
        if m["board"] != self.board:
            raise OtaRejected("board", "update for board %r, this is a %r"
                              % (m["board"], self.board))
        if m["seq"] == self.seq:
            raise OtaRejected("replay", "replay: update %d was already accepted" % m["seq"])
        if m["seq"] < self.seq:
            raise OtaRejected("downgrade", "downgrade: update %d is older than update %d, the last "
                              "this board accepted" % (m["seq"], self.seq))
        if m["type"] == "update" and version(m["framework"], "framework") > self.fw:
            raise OtaRejected("framework", "update needs framework %s or newer; this board runs "
                              "%s: update the framework first" % (m["framework"], self.framework))

    def _entry(self, e):
        name = module_of(e["path"], self.area)
        if name != e["name"]:
            raise OtaRejected("malformed", "malformed manifest: module %r has the path %r (that is "
                              "%r)" % (e["name"], e["path"], name))
        if not allowed(name, self.allow):
            raise OtaRejected("unknown", "unknown module %r: this board takes updates for %s only"
                              % (name, ", ".join(self.allow) or "no module"))
        size, zsize = e["size"], e["zsize"]
        limit = size if e["enc"] == "none" else size + size // 64 + 64  # deflate's worst case
        if not 0 <= size <= self.max_module or not 0 <= zsize <= limit:
            raise OtaRejected("size", "module %r declares %d bytes (%d packed): over the %d-byte "
                              "limit of one module" % (name, size, zsize, self.max_module))
        return size

    def _sizes(self, m, total):
        n = len(m["modules"])
        if not 1 <= n <= _MAX_MODULES:
            raise OtaRejected("malformed", "malformed manifest: %d modules, 1 to %d allowed"
                              % (n, _MAX_MODULES))
        free = self.free
        if free is None:
            st = os.statvfs("/")
            free = st[0] * st[3]
        if total + _MARGIN > free:
            raise OtaRejected("size", "update needs %d bytes of flash and %d more spare; %d are "
                              "free" % (total, _MARGIN, free))

    def _versions(self, m):
        for e in m["modules"]:
            have = self.versions.get(e["name"])
            if have and version(e["version"], e["name"]) < version(have, e["name"]) \
                    and m.get("downgrade") is not True:
                raise OtaRejected("downgrade", "downgrade: %s %s would replace %s (sign a rollback "
                                  "to allow it)" % (e["name"], e["version"], have))


# ----- the whole check, and key rotation ----------------------------------------------------
def _checked(manifest, signature, kid, policy):
    yield from _signed(manifest, signature, policy.keys, kid)
    m = parse(manifest)
    policy.check(m)
    return m


def check(manifest, signature, kid, policy):
    """Signature first, then the manifest: the checked manifest (dict), or OtaRejected."""
    return finish(_checked(manifest, signature, kid, policy))


async def check_async(manifest, signature, kid, policy):
    """check() for the installer: the loop runs other tasks during the signature's math."""
    return await finish_async(_checked(manifest, signature, kid, policy))


def accept_keys(m):
    """The new trusted keys of a verified "keys" manifest (signed by a key trusted now)."""
    if m.get("type") != "keys":
        raise OtaRejected("malformed", "not a key statement: type %r" % m.get("type"))
    try:
        return load_keys(m["keys"])
    except ConfigError as e:
        raise OtaRejected("malformed", "key statement: %s" % e)
