"""A durable :class:`~github_p2p.workqueue.store.QueueStore` in SQLite (the hub's state dir).

One process writes (the hub, from its trio thread) in small transactions: each transition is
``BEGIN IMMEDIATE`` → read the row → apply the pure change → ``UPDATE … RETURNING`` guarded by
the row's previous state, token and attempts → ``COMMIT``. The guard makes a lost update
impossible even if a second process opened the same file. WAL with ``synchronous=NORMAL``
survives a killed hub (only a power cut may lose the last commits), and a restarted hub finds
every queue, lease and result where it was.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from github_p2p.core.queue import (
    ITEM_STATES,
    ItemRecord,
    QueueCounts,
    QueueKey,
    QueueMeta,
    QueuePolicy,
)
from github_p2p.errors import CacheStoreError
from github_p2p.workqueue.store import Change

__all__ = ["SQLiteQueueStore"]

_SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS queues (
    queue_id BLOB NOT NULL,
    attempt INTEGER NOT NULL,
    owner TEXT NOT NULL,
    total INTEGER NOT NULL,
    lease_ttl REAL NOT NULL,
    max_attempts INTEGER NOT NULL,
    retry_failed INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (queue_id, attempt)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queues_owner ON queues (owner);
CREATE INDEX IF NOT EXISTS queues_updated ON queues (updated_at);
CREATE TABLE IF NOT EXISTS items (
    queue_id BLOB NOT NULL,
    attempt INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    digest BLOB NOT NULL,
    envelope BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    token TEXT,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL,
    reported INTEGER NOT NULL,
    completions INTEGER NOT NULL,
    carried INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (queue_id, attempt, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_state ON items (queue_id, attempt, state, idx);
"""
_ITEM_COLUMNS: Final = ("idx, digest, envelope, state, attempts, token, holder, expires_at, "
                        "reported, completions, carried, updated_at")
_KEY: Final = "queue_id = ? AND attempt = ?"


def _record(row: Sequence[Any]) -> ItemRecord:
    state = str(row[3])
    if state not in ITEM_STATES:
        raise CacheStoreError(f"queue store holds an item in unknown state {state!r}")
    return ItemRecord(index=int(row[0]), digest=bytes(row[1]), envelope=bytes(row[2]),
                      state=state,  # checked just above
                      attempts=int(row[4]), token=row[5], holder=str(row[6]),
                      expires_at=float(row[7]), reported=bool(row[8]),
                      completions=int(row[9]), carried=bool(row[10]),
                      updated_at=float(row[11]))


def _meta(row: Sequence[Any]) -> QueueMeta:
    return QueueMeta(QueueKey(bytes(row[0]), int(row[1])),
                     QueuePolicy(float(row[4]), int(row[5]), bool(row[6])),
                     total=int(row[3]), owner=str(row[2]), created_at=float(row[7]),
                     updated_at=float(row[8]))


class SQLiteQueueStore:
    """Queues in one SQLite file, written by one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, isolation_level=None)
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, _SCHEMA_VERSION):
                raise CacheStoreError(f"{self.path}: queue store schema {version} is newer "
                                      f"than this github-p2p ({_SCHEMA_VERSION})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise CacheStoreError(f"cannot open the queue store {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise CacheStoreError(f"queue store: {exc}") from exc

    def _query(self, sql: str, args: Sequence[Any]) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc

    # -- QueueStore ---------------------------------------------------------------------------

    async def create(self, meta: QueueMeta, items: Sequence[ItemRecord]) -> QueueMeta:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        key = meta.key
        try:
            with self._transaction() as db:
                row = db.execute(f"SELECT * FROM queues WHERE {_KEY}",
                                 (key.queue_id, key.attempt)).fetchone()
                if row is not None:
                    return _meta(row)
                policy = meta.policy
                db.execute("INSERT INTO queues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (key.queue_id, key.attempt, meta.owner, meta.total,
                            policy.lease_ttl, policy.max_attempts, int(policy.retry_failed),
                            meta.created_at, meta.updated_at))
                db.executemany(
                    f"INSERT INTO items (queue_id, attempt, {_ITEM_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(key.queue_id, key.attempt, *self._values(item)) for item in items])
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc
        return meta

    @staticmethod
    def _values(item: ItemRecord) -> tuple[Any, ...]:
        return (item.index, item.digest, item.envelope, item.state, item.attempts, item.token,
                item.holder, item.expires_at, int(item.reported), item.completions,
                int(item.carried), item.updated_at)

    async def meta(self, key: QueueKey) -> QueueMeta | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT * FROM queues WHERE {_KEY}", (key.queue_id, key.attempt))
        return _meta(rows[0]) if rows else None

    async def digests(self, key: QueueKey) -> list[bytes]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT digest FROM items WHERE {_KEY} ORDER BY idx",
                           (key.queue_id, key.attempt))
        return [bytes(row[0]) for row in rows]

    async def item(self, key: QueueKey, index: int) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {_KEY} AND idx = ?",
                           (key.queue_id, key.attempt, index))
        return _record(rows[0]) if rows else None

    async def done_digests(self, queue_id: bytes, before_attempt: int) -> frozenset[bytes]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query("SELECT DISTINCT digest FROM items WHERE queue_id = ? "
                           "AND attempt < ? AND state = 'done'", (queue_id, before_attempt))
        return frozenset(bytes(row[0]) for row in rows)

    def _swap(self, db: sqlite3.Connection, key: QueueKey, before: ItemRecord,
              change: Change) -> ItemRecord:
        after = change(before)
        if after == before:
            return after
        if after.index != before.index or after.digest != before.digest:
            raise ValueError("a change may not move an item or alter its content")
        # Guarded by what we read: a writer that slipped in between makes this match nothing.
        updated = db.execute(
            f"UPDATE items SET state = ?, attempts = ?, token = ?, holder = ?, expires_at = ?, "
            f"reported = ?, completions = ?, carried = ?, updated_at = ? "
            f"WHERE {_KEY} AND idx = ? AND state = ? AND attempts = ? AND token IS ? "
            f"AND reported = ? AND expires_at = ? RETURNING idx",
            (after.state, after.attempts, after.token, after.holder, after.expires_at,
             int(after.reported), after.completions, int(after.carried), after.updated_at,
             key.queue_id, key.attempt, before.index, before.state, before.attempts,
             before.token, int(before.reported), before.expires_at)).fetchall()
        if len(updated) != 1:
            raise CacheStoreError(f"queue store: item {before.index} changed underneath us "
                                  "(is another process writing the same file?)")
        db.execute(f"UPDATE queues SET updated_at = max(updated_at, ?) WHERE {_KEY}",
                   (after.updated_at, key.queue_id, key.attempt))
        return after

    async def update(self, key: QueueKey, index: int, change: Change) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        try:
            with self._transaction() as db:
                row = db.execute(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {_KEY} AND idx = ?",
                                 (key.queue_id, key.attempt, index)).fetchone()
                if row is None:
                    return None
                return self._swap(db, key, _record(row), change)
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc

    async def claim_first(self, key: QueueKey, change: Change) -> ItemRecord | None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        try:
            with self._transaction() as db:
                row = db.execute(
                    f"SELECT {_ITEM_COLUMNS} FROM items WHERE {_KEY} AND state = 'ready' "
                    "ORDER BY idx LIMIT 1", (key.queue_id, key.attempt)).fetchone()
                if row is None:
                    return None
                return self._swap(db, key, _record(row), change)
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc

    async def leased(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {_KEY} "
                           "AND state = 'leased' ORDER BY idx", (key.queue_id, key.attempt))
        return [_record(row) for row in rows]

    async def counts(self, key: QueueKey) -> QueueCounts:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT state, count(*), sum(carried) FROM items WHERE {_KEY} "
                           "GROUP BY state", (key.queue_id, key.attempt))
        tally = {str(row[0]): int(row[1]) for row in rows}
        carried = sum(int(row[2] or 0) for row in rows)
        return QueueCounts(tally.get("ready", 0), tally.get("leased", 0), tally.get("done", 0),
                           tally.get("failed", 0), carried)

    async def items(self, key: QueueKey) -> list[ItemRecord]:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        rows = self._query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE {_KEY} ORDER BY idx",
                           (key.queue_id, key.attempt))
        return [_record(row) for row in rows]

    async def owned_by(self, owner: str) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        return int(self._query("SELECT count(*) FROM queues WHERE owner = ?", (owner,))[0][0])

    async def queue_count(self) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        return int(self._query("SELECT count(*) FROM queues", ())[0][0])

    async def prune(self, idle_before: float) -> int:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        try:
            with self._transaction() as db:
                old = db.execute("SELECT queue_id, attempt FROM queues WHERE updated_at < ?",
                                 (idle_before,)).fetchall()
                for queue_id, attempt in old:
                    db.execute(f"DELETE FROM items WHERE {_KEY}", (queue_id, attempt))
                    db.execute(f"DELETE FROM queues WHERE {_KEY}", (queue_id, attempt))
        except sqlite3.Error as exc:
            raise CacheStoreError(f"queue store: {exc}") from exc
        return len(old)

    def close(self) -> None:
        """See :class:`~github_p2p.workqueue.store.QueueStore`."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
