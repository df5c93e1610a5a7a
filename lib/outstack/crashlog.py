# The black box: why the board last went down (reset cause, server, message type, trimmed
# traceback, counters), plus the boot-loop streak and the quarantine list. Kept in backup
# memory where the board has room, else in flash files that one LittleFS rename replaces
# whole, each with a CRC: a power cut leaves the old or the new copy, and a corrupt one is
# ignored with a warning instead of stopping the boot.
import json
import os
from binascii import crc32
from micropython import const

DIR = "/.outstack"
RECORD = DIR + "/crash.json"
STATE = DIR + "/state.json"
CONFIG_ERRORS = DIR + "/config-errors.json"
MAGIC = "OSB1"
_TB_LINES = const(6)  # traceback lines kept: the last frames and the error


def _seal(obj):
    body = json.dumps(obj)
    return "%s %08x\n%s" % (MAGIC, crc32(body.encode()) & 0xFFFFFFFF, body)


def _open(text, what):
    # (object, warning): None and a warning if the text is not an intact record.
    head, _, body = text.partition("\n")
    parts = head.split(" ")
    if len(parts) != 2 or parts[0] != MAGIC:
        return None, "%s is not a crash record: ignored" % what
    if int(parts[1], 16) != crc32(body.encode()) & 0xFFFFFFFF:
        return None, "%s is corrupt (CRC mismatch): ignored" % what
    try:
        return json.loads(body), None
    except ValueError:
        return None, "%s is corrupt (bad JSON): ignored" % what


def _mkdir():
    try:
        os.mkdir(DIR)
    except OSError:
        pass  # already there


def save_sealed(path, obj):
    """Any small state: sealed with a CRC and replaced whole by one rename."""
    _mkdir()
    with open(path + ".new", "w") as f:
        f.write(_seal(obj))
    os.rename(path + ".new", path)  # the atomic step


async def write_sealed(path, body, every=1):
    """The one writer of records too big to build at once: the text pieces that body()
    yields (it is called twice: the CRC goes first), sealed like save_sealed() and replaced
    by one rename, yielding to the loop every `every` pieces so the servers and the watchdog
    never wait for flash. Raises OSError (a full flash) with nothing half-written left."""
    from asyncio import sleep_ms

    crc = 0
    for i, piece in enumerate(body()):
        crc = crc32(piece.encode(), crc)
        if i % every == 0:
            await sleep_ms(0)
    _mkdir()
    try:
        with open(path + ".new", "w") as f:
            f.write("%s %08x\n" % (MAGIC, crc & 0xFFFFFFFF))
            for i, piece in enumerate(body()):
                f.write(piece)
                if i % every == 0:
                    await sleep_ms(0)
        await sleep_ms(0)  # the close (flash program) and the rename are separate steps
        os.rename(path + ".new", path)
    except BaseException:
        _remove(path + ".new")
        raise


def load_sealed(path):
    """(object, warning): None and a warning if the file is not an intact record."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None, None
    return _open(text, path)


def _backup_fits(text):
    from outstack import hal

    return len(text) + 2 <= hal.board.BACKUP_BYTES


def save(rec):
    """Keep `rec` (a dict) as the latest crash record: one place only, never two copies."""
    from outstack import hal

    text = _seal(rec)
    if _backup_fits(text):
        data = text.encode()
        hal.backup_write(bytes((len(data) & 0xFF, len(data) >> 8)) + data)
        _remove(RECORD)
    else:
        save_sealed(RECORD, rec)
        if hal.board.BACKUP_BYTES >= 256:
            hal.backup_write(b"")


def load():
    """(record or None, warning or None)."""
    from outstack import hal

    if hal.board.BACKUP_BYTES >= 256:
        raw = hal.backup_read()
        n = raw[0] | raw[1] << 8
        if 0 < n <= len(raw) - 2:
            return _open(raw[2 : 2 + n].decode(), "the crash record in backup memory")
    return load_sealed(RECORD)


def clear():
    from outstack import hal

    if hal.board.BACKUP_BYTES >= 256:
        hal.backup_write(b"")
    _remove(RECORD)


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def note_config(errors, boot):
    """Keep this boot's config errors for `outstack crashlog` (none: the file goes)."""
    if errors:
        save_sealed(CONFIG_ERRORS, {"boot": boot, "errors": errors})
    else:
        _remove(CONFIG_ERRORS)


def load_state():
    """The boot-loop streak and quarantine: {"streak", "streak_ms", "quarantine", "boots"}."""
    state, warning = load_sealed(STATE)
    base = {"streak": 0, "streak_ms": 0, "quarantine": [], "boots": 0, "crashes": 0}
    if isinstance(state, dict):
        base.update(state)
    return base, warning


def save_state(state):
    save_sealed(STATE, state)


def trim(exc, keep=_TB_LINES):
    """The last `keep` lines of exc's traceback, as text."""
    import io
    import sys

    buf = io.StringIO()
    sys.print_exception(exc, buf)
    lines = buf.getvalue().strip().split("\n")
    return "\n".join(lines[-keep:])
