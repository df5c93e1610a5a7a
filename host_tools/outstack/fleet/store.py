"""A rollout's state in SQLite: every transition one committed transaction, so a host that is
killed mid-rollout starts again where it stopped (docs/FLEET.md).

Several processes share the file (a rollout, `fleet status`, the dashboard) and one Store is
used from several threads (a step's transfers). The file is in WAL mode, so a reader never
holds up a writer; a Store's own threads take turns on its connection (`lock`): sixteen
threads writing through one connection while another process read made SQLite answer
"database is locked" after its 30 s wait, which ended a dashboard's resume."""

import json
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
create table if not exists rollouts (
    id integer primary key, package text not null, sha text not null, seq integer not null,
    board text not null, modules text not null, canary integer not null, steps text not null,
    soak real not null, rule text not null, state text not null, step integer not null,
    soak_until real, reason text, rollback_seq integer, created real not null);
create table if not exists targets (
    rollout integer not null, board text not null, step integer, state text not null,
    detail text, base text, updated real not null, primary key (rollout, board));
create table if not exists actions (
    at real not null, who text not null, action text not null, rollout integer, said text);
"""
TOOK = ("installed", "healthy", "crashed", "lost")  # boards running the release (or were)


class Store:
    def __init__(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.RLock()  # one connection, one statement at a time
        try:
            self.db.execute("pragma journal_mode=wal")
        except sqlite3.OperationalError:
            pass  # a file system without shared memory: the rollback journal still works
        self.db.executescript(SCHEMA)

    def read(self, sql, args=()) -> list:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def write(self, *statements) -> None:
        """(sql, args) pairs in one transaction."""
        with self.lock:
            self.db.execute("begin immediate")
            try:
                for sql, args in statements:
                    self.db.execute(sql, args)
            except BaseException:
                self.db.execute("rollback")
                raise
            self.db.execute("commit")

    def create(self, package, sha, seq, board, modules, canary, steps, soak, rule, boards):
        with self.lock, self.db:
            cur = self.db.execute(
                "insert into rollouts (package, sha, seq, board, modules, canary, steps, soak, "
                "rule, state, step, created) values (?,?,?,?,?,?,?,?,?,'running',0,?)",
                (str(package), sha, seq, board, json.dumps(modules), canary, json.dumps(steps),
                 soak, rule, time.time()))
            rid = cur.lastrowid
            self.db.executemany("insert into targets (rollout, board, state, updated) values "
                                "(?, ?, 'idle', ?)", [(rid, b, time.time()) for b in boards])
        return rid

    def rollout(self, rid=None):
        q = "select * from rollouts " + ("where id = ?" if rid else "order by id desc limit 1")
        rows = self.read(q, (rid,) if rid else ())
        return rows[0] if rows else None

    def all(self):
        return self.read("select * from rollouts order by id")

    def set(self, rid, **fields):
        keys = ", ".join(f"{k} = ?" for k in fields)
        self.write((f"update rollouts set {keys} where id = ?", (*fields.values(), rid)))

    def move(self, rid, was: tuple, healthy=False, **fields) -> bool:
        """Set `fields` only while the rollout's state is one of `was`, in one transaction
        (with `healthy`, its installed boards turn healthy in the same one): a halt that
        another process wrote in between stands. Whether it moved."""
        keys = ", ".join(f"{k} = ?" for k in fields)
        with self.lock:
            self.db.execute("begin immediate")
            try:
                moved = self.db.execute(
                    f"update rollouts set {keys} where id = ? and state in (%s)" %
                    ",".join("?" * len(was)), (*fields.values(), rid, *was)).rowcount == 1
                if moved and healthy:
                    self.db.execute("update targets set state = 'healthy', updated = ? where "
                                    "rollout = ? and state = 'installed'", (time.time(), rid))
            except BaseException:
                self.db.execute("rollback")
                raise
            self.db.execute("commit")
        return moved

    def targets(self, rid, *states):
        q = "select * from targets where rollout = ?"
        if states:
            q += " and state in (%s)" % ",".join("?" * len(states))
        return self.read(q + " order by board", (rid, *states))

    def target(self, rid, board, **fields):
        fields["updated"] = time.time()
        keys = ", ".join(f"{k} = ?" for k in fields)
        self.write((f"update targets set {keys} where rollout = ? and board = ?",
                    (*fields.values(), rid, board)))

    def add_board(self, rid, board):
        self.write(("insert or ignore into targets (rollout, board, state, updated) "
                    "values (?, ?, 'idle', ?)", (rid, board, time.time())))

    def board_targets(self, board):
        """Every rollout's row for `board`, with its package and update number."""
        return self.read("select targets.*, rollouts.package, rollouts.seq from targets join "
                         "rollouts on rollouts.id = targets.rollout where targets.board = ? "
                         "and targets.state != 'idle' order by targets.rollout", (board,))

    def close(self):
        with self.lock:
            self.db.close()
