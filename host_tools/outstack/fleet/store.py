"""A rollout's state in SQLite: every transition one committed transaction, so a host that is
killed mid-rollout starts again where it stopped (docs/FLEET.md)."""

import json
import sqlite3
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
"""
TOOK = ("installed", "healthy", "crashed", "lost")  # boards running the release (or were)


class Store:
    def __init__(self, path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                  check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def create(self, package, sha, seq, board, modules, canary, steps, soak, rule, boards):
        with self.db:
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
        return self.db.execute(q, (rid,) if rid else ()).fetchone()

    def all(self):
        return self.db.execute("select * from rollouts order by id").fetchall()

    def set(self, rid, **fields):
        keys = ", ".join(f"{k} = ?" for k in fields)
        with self.db:
            self.db.execute(f"update rollouts set {keys} where id = ?", (*fields.values(), rid))

    def targets(self, rid, *states):
        q = "select * from targets where rollout = ?"
        if states:
            q += " and state in (%s)" % ",".join("?" * len(states))
        return self.db.execute(q + " order by board", (rid, *states)).fetchall()

    def target(self, rid, board, **fields):
        fields["updated"] = time.time()
        keys = ", ".join(f"{k} = ?" for k in fields)
        with self.db:
            self.db.execute(f"update targets set {keys} where rollout = ? and board = ?",
                            (*fields.values(), rid, board))

    def add_board(self, rid, board):
        with self.db:
            self.db.execute("insert or ignore into targets (rollout, board, state, updated) "
                            "values (?, ?, 'idle', ?)", (rid, board, time.time()))

    def close(self):
        self.db.close()
