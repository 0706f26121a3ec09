"""What every registry offers (:class:`Registry`) and the counters they share."""

from __future__ import annotations

import threading
from typing import Protocol

from github_p2p.registry.listing import Listing
from github_p2p.registry.record import RegistryRecord

__all__ = ["COUNTERS", "GAUGES", "Registry", "RegistryCounters"]

#: Running totals.
COUNTERS = ("requests", "api_calls", "heartbeats", "published", "withdrawn", "pruned",
            "errors")
#: Figures of the latest read pass.
GAUGES = ("live", "expired", "withdrawals", "forged", "malformed", "unrelated")


class Registry(Protocol):
    """A place where the nodes of a fleet announce themselves.

    Implementations: :class:`~github_p2p.registry.issue.IssueRegistry` (comments of a GitHub
    issue) and :class:`~github_p2p.registry.files.FileRegistry` (a directory).
    """

    counters: RegistryCounters

    def scan(self, now: float) -> Listing:
        """Read every entry once and classify it."""

    def list_live(self, now: float) -> tuple[RegistryRecord, ...]:
        """The live records, one per peer."""

    def publish(self, record: RegistryRecord) -> None:
        """Create or replace this peer's one entry."""

    def withdraw(self, withdrawal: RegistryRecord) -> int:
        """Replace this peer's entry with ``withdrawal`` (a record with ``withdrawn`` set,
        newer than every record the peer published); returns the entries written (1)."""

    def prune(self, now: float, *, listing: Listing | None = None,
              limit: int | None = None) -> int:
        """Delete expired records (at most ``limit``), from ``listing`` or a fresh scan."""

    def close(self) -> None:
        """Release what the registry holds."""


class RegistryCounters:
    """Thread-safe counters of one node's registry activity, reported as ``registry_*``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTERS + GAUGES, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Increase the counter ``name``."""
        with self._lock:
            self._values[name] += amount

    def observe(self, listing: Listing) -> None:
        """Remember the figures of the latest read pass."""
        counts = listing.counts()
        with self._lock:
            for name in GAUGES:
                self._values[name] = counts[name]

    def get(self, name: str) -> int:
        """One figure."""
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        """Every figure, prefixed ``registry_`` (as ``/_p2p/stats`` shows them)."""
        with self._lock:
            return {f"registry_{name}": value for name, value in self._values.items()}
