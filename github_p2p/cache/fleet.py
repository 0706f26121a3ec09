"""The fleet cache as the client sees it: an interface, and the sealing layer on top of it.

A :class:`FleetCache` moves opaque envelopes by 32-byte id (the libp2p implementation talks to
the hubs). :class:`SealedFleet` adds the keys: it turns cache keys into HMAC ids and entries
into sealed envelopes, so nothing readable ever leaves the runner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from github_p2p.core.cachekey import CacheKey
from github_p2p.core.entry import CacheEntry
from github_p2p.core.keys import FleetKeys, entry_id
from github_p2p.core.sealing import open_entry, seal_entry
from github_p2p.core.stats import Stats
from github_p2p.errors import IntegrityError

__all__ = [
    "FleetCache",
    "FleetLease",
    "LeaseOutcome",
    "LeaseResult",
    "SealedFleet",
]

log = logging.getLogger(__name__)


class LeaseOutcome(str, Enum):
    """How a hub answered a lease request."""

    HIT = "hit"  # a fresh entry was there
    GRANTED = "granted"  # nobody is fetching it: you fill it (a stale entry may come along)
    FILLED = "filled"  # another runner was fetching it; you waited and got its fill
    TIMEOUT = "timeout"  # another runner is fetching it and did not finish in time


@dataclass(frozen=True)
class LeaseResult:
    """A hub's answer to a lease request, still sealed."""

    outcome: LeaseOutcome
    envelope: bytes = b""
    fresh: bool = False
    token: str | None = field(default=None, repr=False)


class FleetCache(Protocol):
    """Opaque envelope transport to the fleet's hubs. Methods raise ``FleetError``."""

    def lease(self, entry_id: bytes, wait: float) -> LeaseResult:
        """Get a fresh entry, or the right to fill it, waiting up to ``wait`` for a fill."""

    def put(
        self,
        entry_id: bytes,
        envelope: bytes,
        *,
        fresh_ttl: float,
        keep_ttl: float,
        lease_token: str | None,
        tag: bytes | None,
    ) -> None:
        """Store an envelope (releasing the lease it fills, if any)."""

    def release(self, entry_id: bytes, lease_token: str) -> None:
        """Give up a lease without filling it."""

    def invalidate(self, ids: Sequence[bytes]) -> None:
        """Delete entries by id, and every entry tagged with one of ``ids``."""


@dataclass(frozen=True)
class FleetLease:
    """An opened lease answer: the entry (if one came and verified) and the lease token."""

    outcome: LeaseOutcome
    entry: CacheEntry | None
    fresh: bool
    token: str | None = field(default=None, repr=False)


class SealedFleet:
    """Speaks in cache keys and entries; the fleet beneath sees only ids and ciphertext."""

    def __init__(self, cache: FleetCache, keys: FleetKeys, stats: Stats) -> None:
        self.cache = cache
        self.keys = keys
        self._stats = stats

    def id_of(self, key: CacheKey) -> bytes:
        """The fleet id of a cache key."""
        return entry_id(self.keys, key.text)

    def tag_of(self, resource: str) -> bytes:
        """The fleet id of a resource, used to invalidate all its variants."""
        return entry_id(self.keys, "resource|" + resource)

    def lease(self, key: CacheKey, wait: float) -> FleetLease:
        """Ask the hub for ``key``; a sealed entry that fails to open is counted and dropped."""
        ident = self.id_of(key)
        result = self.cache.lease(ident, wait)
        entry = None
        if result.envelope:
            try:
                entry = open_entry(self.keys, ident, result.envelope)
            except IntegrityError as exc:
                self._stats.add("integrity_failures")
                log.warning("refused a fleet entry: %s", exc)
        return FleetLease(result.outcome, entry, result.fresh and entry is not None,
                          result.token)

    def put(
        self, key: CacheKey, entry: CacheEntry, *, fresh_ttl: float, keep_ttl: float,
        lease_token: str | None,
    ) -> None:
        """Seal and share an entry."""
        ident = self.id_of(key)
        self.cache.put(
            ident, seal_entry(self.keys, ident, entry), fresh_ttl=fresh_ttl,
            keep_ttl=keep_ttl, lease_token=lease_token, tag=self.tag_of(key.resource),
        )

    def release(self, key: CacheKey, lease_token: str) -> None:
        """Give a lease back unfilled."""
        self.cache.release(self.id_of(key), lease_token)

    def invalidate(self, resources: Sequence[str]) -> None:
        """Drop every shared variant of these resources."""
        self.cache.invalidate([self.tag_of(r) for r in resources])
