"""The local cache store on diskcache: bounded, multi-process safe, self-healing.

diskcache keeps entries in SQLite plus files, which is safe with several processes writing at
once (each runner step may be its own process). Entries are kept past their freshness, up to
the policy's stale window, so they can be revalidated or served stale when GitHub fails. Each
entry is tagged with its resource so a write can invalidate every variant of it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import diskcache

from .entry import CacheEntry, decode_entry, encode_entry
from .errors import CacheStoreError, IntegrityError

__all__ = ["DEFAULT_SIZE_LIMIT", "LocalStore"]

log = logging.getLogger(__name__)

DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024


class LocalStore:
    """Entries by local id, with eviction (least recently stored) past ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self.corruptions = 0
        self._cache = self._open()

    def _open(self) -> diskcache.Cache:
        try:
            return self._open_once()
        except (sqlite3.DatabaseError, OSError) as exc:
            # A corrupted cache must never stop a CI job: move it aside and start empty.
            aside = self.directory.with_name(f"{self.directory.name}.corrupt-{int(time.time())}")
            log.warning("local cache at %s is unreadable (%s); moved it to %s",
                        self.directory, exc, aside)
            self.corruptions += 1
            try:
                os.replace(self.directory, aside)
            except OSError as move_exc:
                raise CacheStoreError(
                    f"local cache at {self.directory} is corrupt and cannot be moved aside"
                ) from move_exc
            try:
                return self._open_once()
            except (sqlite3.DatabaseError, OSError) as again:
                raise CacheStoreError(f"cannot open local cache at {self.directory}") from again

    def _open_once(self) -> diskcache.Cache:
        self.directory.mkdir(parents=True, exist_ok=True)
        cache = diskcache.Cache(
            str(self.directory),
            size_limit=self.size_limit,
            eviction_policy="least-recently-stored",
            tag_index=True,
            timeout=10,
        )
        cache.check(fix=False)  # touches the database, so corruption shows here, not later
        return cache

    def get(self, local_id: str) -> CacheEntry | None:
        """The entry stored under ``local_id``, or ``None``. A damaged entry is dropped."""
        try:
            raw = self._cache.get(local_id)
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("local cache read failed (%s); treating as a miss", exc)
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            return decode_entry(raw)
        except IntegrityError:
            self.corruptions += 1
            log.warning("dropping a damaged local cache entry")
            self.delete(local_id)
            return None

    def put(self, local_id: str, entry: CacheEntry, *, keep_for: float, tag: str) -> bool:
        """Store ``entry`` for ``keep_for`` seconds; ``False`` when the disk refused it."""
        try:
            return bool(
                self._cache.set(local_id, encode_entry(entry), expire=keep_for, tag=tag)
            )
        except (sqlite3.DatabaseError, OSError) as exc:
            # A full disk degrades to "not cached", never to a failed request.
            log.warning("local cache write failed (%s); continuing uncached", exc)
            return False

    def delete(self, local_id: str) -> None:
        """Forget one entry."""
        try:
            self._cache.delete(local_id)
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("local cache delete failed (%s)", exc)

    def invalidate(self, tag: str) -> int:
        """Forget every entry of a resource; returns how many were removed."""
        try:
            return int(self._cache.evict(tag))
        except (sqlite3.DatabaseError, OSError) as exc:
            log.warning("local cache invalidation failed (%s)", exc)
            return 0

    def __len__(self) -> int:
        return len(self._cache)

    def volume(self) -> int:
        """Bytes used on disk."""
        return int(self._cache.volume())

    def close(self) -> None:
        """Release the database handle."""
        self._cache.close()
