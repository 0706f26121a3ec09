"""The runner's local cache store: entries by local id, kept past freshness for revalidation.

Entries are kept past their freshness, up to the policy's stale window, so they can be
revalidated or served stale when GitHub fails. Each entry is tagged with its resource so a write
can invalidate every variant of it. Disk trouble is handled by :class:`DiskStore`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from github_p2p.cache.diskstore import DiskStore
from github_p2p.core.entry import CacheEntry, decode_entry, encode_entry
from github_p2p.errors import IntegrityError

__all__ = ["DEFAULT_SIZE_LIMIT", "LocalStore"]

log = logging.getLogger(__name__)

DEFAULT_SIZE_LIMIT = 512 * 1024 * 1024


class LocalStore(DiskStore):
    """Cache entries by local id, bounded by ``size_limit`` bytes."""

    def __init__(self, directory: str | Path, *, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        super().__init__(directory, size_limit=size_limit, what="local cache")

    def get(self, local_id: str) -> CacheEntry | None:
        """The entry stored under ``local_id``, or ``None``. A damaged entry is dropped."""
        raw = self._read(local_id)
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
        return self._write(local_id, encode_entry(entry), expire=keep_for, tag=tag)

    def delete(self, local_id: str) -> None:
        """Forget one entry."""
        self._delete(local_id)

    def invalidate(self, tag: str) -> int:
        """Forget every entry of a resource; returns how many were removed."""
        return self._evict(tag)
