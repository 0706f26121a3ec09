"""The diskcache wrapper both stores share: bounded, multi-process safe, self-healing.

diskcache keeps entries in SQLite plus files, which is safe with several processes writing at
once. A directory that cannot hold a store at all (a file is in the way, a read-only file
system, no permission) is a :class:`~github_p2p.errors.ConfigError` that says so; only a store
whose database really is damaged (SQLite: "not a database", "malformed") is moved aside with a
warning and replaced by an empty one. A read or write that fails later becomes a miss or "not
stored", never an error a user sees.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import diskcache

from github_p2p.errors import CacheStoreError, ConfigError

__all__ = ["DiskStore"]

log = logging.getLogger(__name__)

_DISK_ERRORS = (sqlite3.DatabaseError, OSError)


class DiskStore:
    """Values by key, evicting the least recently stored past ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int, what: str) -> None:
        self.directory = Path(directory)
        self.size_limit = size_limit
        self.what = what
        self.corruptions = 0
        self._cache = self._open()

    def _open(self) -> diskcache.Cache:
        self._check_usable()
        try:
            return self._open_once()
        except sqlite3.OperationalError as exc:
            # Locked, unwritable or failing I/O: the store may be perfectly good, keep it.
            raise ConfigError(f"cannot open {self.what} at {self.directory}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            self._move_aside(exc)
        except OSError as exc:
            raise ConfigError(f"cannot open {self.what} at {self.directory}: "
                              f"{exc.strerror or exc}") from exc
        try:
            return self._open_once()
        except _DISK_ERRORS as again:
            raise CacheStoreError(f"cannot open {self.what} at {self.directory}") from again

    def _check_usable(self) -> None:
        """Refuse, naming the reason, a directory that cannot hold a store whatever it holds."""
        directory = self.directory
        blocker = next((p for p in (directory, *directory.parents)
                        if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ConfigError(f"{self.what} directory {directory} cannot be used: {blocker} "
                              "is not a directory")
        try:
            # Owner only: the local store holds API responses in the clear (private
            # repositories' too), and a self-hosted runner may have other users.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=directory, prefix=".write-probe-")
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            raise ConfigError(f"{self.what} directory {directory} is not writable: "
                              f"{exc.strerror or exc}") from exc

    def _move_aside(self, exc: Exception) -> None:
        aside = self.directory.with_name(f"{self.directory.name}.corrupt-{int(time.time())}")
        log.warning("%s at %s is damaged (%s); moved it to %s",
                    self.what, self.directory, exc, aside)
        self.corruptions += 1
        try:
            os.replace(self.directory, aside)
        except OSError as move_exc:
            raise CacheStoreError(
                f"{self.what} at {self.directory} is damaged and cannot be moved aside: "
                f"{move_exc.strerror or move_exc}"
            ) from move_exc

    def _open_once(self) -> diskcache.Cache:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        cache = diskcache.Cache(
            str(self.directory),
            size_limit=self.size_limit,
            eviction_policy="least-recently-stored",
            tag_index=True,
            timeout=10,
        )
        cache.check(fix=False)  # touches the database, so corruption shows here, not later
        return cache

    def _read(self, key: str) -> object:
        try:
            return self._cache.get(key)
        except _DISK_ERRORS as exc:
            log.warning("%s read failed (%s); treating it as a miss", self.what, exc)
            return None

    def _write(self, key: str, value: bytes, *, expire: float, tag: str | None) -> bool:
        try:
            return bool(self._cache.set(key, value, expire=expire, tag=tag))
        except _DISK_ERRORS as exc:
            # A full disk degrades to "not cached", never to a failed request.
            log.warning("%s write failed (%s); continuing uncached", self.what, exc)
            return False

    def _delete(self, key: str) -> bool:
        try:
            return bool(self._cache.delete(key))
        except _DISK_ERRORS as exc:
            log.warning("%s delete failed (%s)", self.what, exc)
            return False

    def _evict(self, tag: str) -> int:
        try:
            return int(self._cache.evict(tag))
        except _DISK_ERRORS as exc:
            log.warning("%s invalidation failed (%s)", self.what, exc)
            return 0

    def __len__(self) -> int:
        # Status pages count entries: a damaged database must not turn them into errors.
        try:
            return len(self._cache)
        except _DISK_ERRORS as exc:
            log.warning("%s cannot count its entries (%s)", self.what, exc)
            return 0

    def volume(self) -> int:
        """Bytes used on disk (0 when the database cannot tell)."""
        try:
            return int(self._cache.volume())
        except _DISK_ERRORS as exc:
            log.warning("%s cannot measure its size (%s)", self.what, exc)
            return 0

    def close(self) -> None:
        """Release the database handle."""
        self._cache.close()
