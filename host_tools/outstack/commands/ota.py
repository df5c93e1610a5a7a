"""`outstack ota ACTION`: signed per-module updates. A table of action to (handler, argument
setup, help), like the CLI's own; add `push`, `status`, `rollback` here.

    keygen --out DIR            a signing key pair (the private key stays on this host)
    pack --key PRIV ... FILES   compile, compress, list in a manifest, sign: an update package
    pack --unsigned ...         the same, unsigned, with the manifest beside it for openssl:
        openssl dgst -sha256 -sign ota-key.pem -out update.sig update.pkg.manifest.json
    sign PKG --signature SIG    put that signature into the package (checked with --pub first)
    key-rotate --key CUR ...    a statement, signed by the key boards trust now, of the new keys
    show PKG [--pub KEY]        what a package holds, and whether its signature verifies
"""

import json
from pathlib import Path

from .. import boards
from ..errors import CliError
from ..project import add_argument as add_project


# ----- handlers -----------------------------------------------------------------------------
def keygen(args):
    from ..ota import keys

    bits = _number(args.bits, "--bits")
    if bits not in keys.SIZES:
        raise CliError(f"--bits must be one of {', '.join(map(str, keys.SIZES))}, not {bits}")
    key = keys.generate(bits)
    paths = keys.write_keys(key, Path(args.out), args.force)
    entry = keys.public_entry(key.public_key())
    print(f"private key {paths['private']} (mode 0600: keep it on this host, never on a board)")
    print(f"public key  {paths['pem']} (for openssl) and {paths['json']} (for the board)")
    print(f"key id {entry['kid']}, {bits} bits; in the board's /config.json:")
    print(json.dumps({"ota": {"keys": [entry]}}))


def pack(args):
    from ..ota import pack as P

    key = _signing_key(args)
    board, seq = _board(args.board), _number(args.seq, "--seq")
    framework = _version(args.min_framework or P.framework_version(), "--min-framework")
    srcs = P.sources(args.modules, firmware=_firmware())
    deps = P.parse_depends(args.depends, {s.name for s in srcs})
    entries, blobs = P.build_modules(srcs, board, args.source, _version(args.module_version,
                                     "--module-version"), deps, not args.no_compress)
    manifest = P.update_manifest(board, seq, framework, entries, args.allow_downgrade)
    box = P.assemble(manifest, blobs, key)
    _write(args.out, box.to_bytes())
    _report(args.out, box, f"signed by key {box.kid.hex()}" if key else "unsigned")
    if key is None:
        _unsigned_help(args.out, box.manifest, args.manifest_out)


def _firmware():
    """The firmware folder of the project here, if there is one (names modules by path)."""
    from ..project import find

    try:
        return find().firmware
    except CliError:
        return None


def sign(args):
    from ..ota import container, keys

    data = _read_package(args.package)
    box = container.parse(data, args.package)
    if args.key:
        priv = keys.load_private(args.key)
        pub, sig = priv.public_key(), keys.sign(priv, box.manifest)
    else:
        pub, sig = keys.load_public(args.pub), _read_file(args.signature, "signature file")
        if not keys.verifies(pub, box.manifest, sig):
            raise CliError(f"{args.signature} is not a signature of {args.package}'s manifest by "
                           f"{args.pub}: sign the manifest bytes `outstack ota pack --unsigned` "
                           f"wrote, with the matching private key")
    box.signature, box.kid = sig, keys.key_id(pub)
    out = args.out or args.package
    _write(out, box.to_bytes())
    _report(out, box, "signed by key " + box.kid.hex())


def key_rotate(args):
    from ..ota import keys, pack as P

    cur = keys.load_private(args.key)
    new = [keys.load_public(p) for p in args.new]
    trusted = new + ([cur.public_key()] if args.keep_old else [])
    manifest = P.keys_manifest(_board(args.board), _number(args.seq, "--seq"), trusted)
    box = P.assemble(manifest, b"", cur)
    _write(args.out, box.to_bytes())
    ids = ", ".join(keys.key_id(k).hex() for k in trusted)
    print(f"{args.out}: key statement {manifest['seq']} for {manifest['board']}, signed by "
          f"{box.kid.hex()}: boards that accept it trust {ids}")


def show(args):
    from ..ota import container, keys

    box = container.parse(_read_package(args.package), args.package)
    print(json.dumps(box.fields(), indent=2))
    state = f"signed by key {box.kid.hex()}" if box.signature else "unsigned"
    if args.pub and box.signature:
        ok = keys.verifies(keys.load_public(args.pub), box.manifest, box.signature)
        state += (": the signature verifies" if ok
                  else f": the signature does NOT verify with {args.pub}")
    print(f"{args.package}: {len(box.to_bytes())} bytes, {state}")


# ----- checks and helpers -------------------------------------------------------------------
def _signing_key(args):
    from ..ota import keys

    if args.unsigned == bool(args.key):
        raise CliError("pack needs --key PRIVATE.pem, or --unsigned to sign it elsewhere")
    return keys.load_private(args.key) if args.key else None


def _number(text, flag: str) -> int:
    try:
        value = int(text, 10)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise CliError(f"{flag} must be a whole number of 1 or more, not {text!r}")
    return value


def _version(text: str, flag: str) -> str:
    from ..ota.pack import VERSION

    if not VERSION.match(text):
        raise CliError(f"{flag} must be a version like 1.2.3, not {text!r}")
    return text


def _board(name: str) -> str:
    boards.load(name)  # CliError naming the known boards
    return name


def _read_file(path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {what} {path}: {e.strerror}") from None


def _read_package(path) -> bytes:
    return _read_file(path, "package")


def _write(path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".new")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}") from None


def _report(out, box, state: str) -> None:
    m = box.fields()
    for e in m.get("modules", []):
        print(f"  {e['path']:<28} {e['version']:<8} {e['size']:>7} bytes, {e['zsize']:>7} packed "
              f"({e['enc']})")
    print(f"{out}: update {m['seq']} for {m['board']}, {len(m.get('modules', []))} modules, "
          f"{len(box.to_bytes())} bytes, {state}")


def _unsigned_help(out, manifest: bytes, manifest_out) -> None:
    path = Path(manifest_out or f"{out}.manifest.json")
    _write(path, manifest)
    print(f"manifest to sign: {path}\n"
          f"  openssl dgst -sha256 -sign ota-key.pem -out {out}.sig {path}\n"
          f"  outstack ota sign {out} --signature {out}.sig --pub ota-pub.pem")


def push(args):
    """Send a package over UART (--port) or TCP (--host IP:PORT); rerun to resume a cut push."""
    import sys
    import time

    from ..ota.transfer import Sender, SerialLine, TcpLine

    data = _read_package(args.package)
    line = _line(args, SerialLine, TcpLine)
    bar = _Bar(sys.stdout, len(data))
    t0 = time.monotonic()
    try:
        sender = Sender(line, bar.show)
        said = sender.push(data)
    finally:
        line.close()
    took = time.monotonic() - t0
    bar.done()
    if sender.resumed_from:
        print(f"resumed from byte {sender.resumed_from} of a cut push")
    sent = len(data) - sender.resumed_from
    print(f"sent {sent} bytes in {took:.1f} s ({sent / took:.0f} B/s)")
    print(f"board: {said}")
    if not took_it(said):
        raise CliError(f"the board did not install {args.package}: {said}")


def took_it(said: str) -> bool:
    """True if the board's one line says it took the package (an update installed, a key
    statement accepted, a rollback done, a package received); False for a refusal."""
    if said.startswith(("refused", "rolled back update")):
        return False
    return said.startswith(("installed", "received", "accepted", "rolled "))


def rollback(args):
    """A signed request that puts the previous version of one module back on a board."""
    from ..ota import keys, pack

    boards.load(args.board)
    seq = _number(args.seq, "--seq")
    manifest = {"v": 1, "type": "rollback", "board": args.board, "seq": seq, "module": args.module}
    box = pack.assemble(manifest, b"", keys.load_private(args.key))
    out = Path(args.out) if args.out else None
    if out:
        _write(out, box.to_bytes())
        print(f"{out}: rollback of {args.module}, update {seq} for {args.board}, signed")
    if args.port or args.host:
        args.package = str(out) if out else None
        _send(args, box.to_bytes())


def _send(args, data):
    from ..ota.transfer import Sender, SerialLine, TcpLine

    line = _line(args, SerialLine, TcpLine)
    try:
        said = Sender(line).push(data)
    finally:
        line.close()
    print(f"board: {said}")
    if not took_it(said):
        raise CliError(f"the board did not take it: {said}")


def status(args):
    """What the board runs: the update in use, its state, and each module's version."""
    from ..ota.transfer import Sender, SerialLine, TcpLine

    line = _line(args, SerialLine, TcpLine)
    try:
        st = Sender(line).status()
    finally:
        line.close()
    print(f"running update {st['running']} ({st['state']}), previous {st['previous']}, "
          f"last accepted {st['accepted']}; {'a push is in progress' if st['busy'] else 'idle'}")
    for name, version in sorted(st["versions"].items()):
        print(f"  {name:<24} {version}")
    if st.get("last"):
        print(f"last push: {st['last']}")
    if st.get("rolled_back"):
        print(f"last rollback: {st['rolled_back']}")


def _line(args, serial_line, tcp_line):
    if bool(args.port) == bool(args.host):
        raise CliError("say where the board is: --port UART_DEVICE or --host IP:PORT")
    if args.port:
        return serial_line(args.port, args.baud)
    host, sep, port = args.host.rpartition(":")
    if not sep or not port.isdigit():
        raise CliError(f"--host wants IP:PORT, not '{args.host}'")
    return tcp_line(host, int(port))


class _Bar:
    """A one-line progress bar that redraws in place."""

    def __init__(self, out, total):
        self.out, self.total, self.shown = out, total, -1

    def show(self, done, total):
        pct = 100 * done // max(1, total)
        if pct != self.shown:
            self.shown = pct
            filled = pct * 30 // 100
            self.out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {pct:3d}% {done}/{total} bytes")
            self.out.flush()

    def done(self):
        if self.shown >= 0:
            self.out.write("\n")


# ----- arguments ----------------------------------------------------------------------------
def _keygen_args(p):
    p.add_argument("--out", required=True, help="folder for ota-key.pem, ota-pub.pem, ota-pub.json")
    p.add_argument("--bits", default="2048", help="key size: 2048 (default), 3072 or 4096")
    p.add_argument("--force", action="store_true", help="replace a key already in --out")


def _pack_args(p):
    p.add_argument("modules", nargs="+", metavar="MODULE_FILE",
                   help="firmware/app/NAME.py, or FILE=app/NAME.py to say which module it is")
    p.add_argument("--key", help="private key to sign with (default: the project's ota.key)")
    p.add_argument("--unsigned", action="store_true",
                   help="sign elsewhere (openssl): writes OUT.manifest.json to sign")
    p.add_argument("--board", help="board kind the update is for (default: the project's "
                                   "deploy_board)")
    p.add_argument("--seq", required=True, help="sequence number, greater than the last one sent")
    p.add_argument("--out", required=True, help="package file to write")
    p.add_argument("--source", action="store_true", help="ship .py sources, not .mpy")
    p.add_argument("--min-framework", help="oldest framework it runs on (default: this one's)")
    p.add_argument("--depends", help="MODULE:NEEDS,... e.g. app.processing:app.sensor")
    p.add_argument("--module-version", default="0.0.0",
                   help="version of modules without a __version__ (default 0.0.0)")
    p.add_argument("--allow-downgrade", action="store_true",
                   help="let module versions go down (a rollback)")
    p.add_argument("--no-compress", action="store_true", help="store modules uncompressed")
    p.add_argument("--manifest-out", help="with --unsigned: where to write the manifest")


def _sign_args(p):
    p.add_argument("package")
    p.add_argument("--signature", help="signature file made by openssl over the manifest")
    p.add_argument("--pub", help="public key of that signature (PEM or ota-pub.json)")
    p.add_argument("--key", help="or sign here with this private key")
    p.add_argument("--out", help="write the signed package here (default: in place)")


def _key_rotate_args(p):
    p.add_argument("--key", help="the private key boards trust now (default: the project's)")
    p.add_argument("--new", required=True, action="append",
                   help="public key to trust from now on (repeat for several)")
    p.add_argument("--keep-old", action="store_true", help="keep trusting --key's key as well")
    p.add_argument("--board", help="board kind (default: the project's deploy_board)")
    p.add_argument("--seq", required=True, help="sequence number, greater than the last one sent")
    p.add_argument("--out", required=True)


def _show_args(p):
    p.add_argument("package")
    p.add_argument("--pub", help="check the signature with this public key")


def _push_args(p):
    p.add_argument("package")
    p.add_argument("--port", help="the board's UART (UART1), e.g. /dev/ttyUSB0 or a virtual board pty")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--host", help="IP:PORT of the board's OTA server over Wi-Fi")


def _status_args(p):
    p.add_argument("--port", help="the board's UART (UART1)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--host", help="IP:PORT of the board's OTA server over Wi-Fi")


def _rollback_args(p):
    p.add_argument("module", help="module name, e.g. app.sensor")
    p.add_argument("--key", help="the private key boards trust (default: the project's)")
    p.add_argument("--board", help="board kind (default: the project's running virtual "
                                   "board, else its deploy_board)")
    p.add_argument("--seq", required=True, help="sequence number, greater than the last one sent")
    p.add_argument("--out", help="also keep the signed request in this file")
    p.add_argument("--port", help="send it now over this UART")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--host", help="or over Wi-Fi to IP:PORT")


ACTIONS = {
    "keygen": (keygen, _keygen_args, "make a signing key pair"),
    "pack": (pack, _pack_args, "build a signed update package from module files"),
    "sign": (sign, _sign_args, "put a signature (openssl's, or made here) into a package"),
    "key-rotate": (key_rotate, _key_rotate_args, "a signed statement of the keys to trust next"),
    "show": (show, _show_args, "print a package's manifest and check its signature"),
    "push": (push, _push_args, "send a package to a board (resumes a cut push) and install it"),
    "status": (status, _status_args, "the update a board runs and its module versions"),
    "rollback": (rollback, _rollback_args, "signed: put the previous version of a module back"),
}


def add_arguments(p):
    subs = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (handler, setup, helptext) in ACTIONS.items():
        sp = subs.add_parser(name, help=helptext, description=helptext)
        setup(sp)
        if name != "keygen":
            add_project(sp)
        sp.set_defaults(ota_handler=handler)


def run(args):
    if args.action == "sign" and not args.key and not (args.signature and args.pub):
        raise CliError("sign needs --signature SIG --pub PUBLIC_KEY, or --key PRIVATE_KEY")
    _project_defaults(args)
    return args.ota_handler(args)


def _project_defaults(args) -> None:
    """--key and --board left out: the project's dev key and board (said, never guessed)."""
    from ..connect import running
    from ..project import find

    wants_key = args.action in ("rollback", "key-rotate") or (
        args.action == "pack" and not args.unsigned)
    wants_board = args.action in ("pack", "rollback", "key-rotate")
    if not ((wants_key and not args.key) or (wants_board and not args.board)):
        return
    try:
        project = find(args.project)
    except CliError:
        if args.project:
            raise
        needs = ("--key PRIVATE.pem" + (" (or --unsigned)" if args.action == "pack" else "")
                 if wants_key and not args.key else "--board")
        raise CliError(f"{args.action} needs {needs}: no project here to take it from") from None
    if wants_key and not args.key:
        if project.key is None:
            raise CliError(f"give --key: project {project.name!r} names no ota.key")
        args.key = str(project.key)
    if wants_board and not args.board:
        sim = running(project) if args.action == "rollback" else None
        args.board = sim["board"] if sim else project.deploy_board
