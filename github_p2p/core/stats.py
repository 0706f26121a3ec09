"""Exact request statistics, named as the public contract says."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from enum import Enum

__all__ = ["COUNTERS", "Outcome", "Stats"]


class Outcome(str, Enum):
    """How one request was answered; the value is the ``X-GitHub-P2P-Cache`` header."""

    HIT_LOCAL = "hit-local"
    HIT_PEER = "hit-peer"
    MISS = "miss"
    REVALIDATED = "revalidated"
    STALE = "stale"
    BYPASS = "bypass"


#: Integer counters, in the order they are reported.
COUNTERS = (
    "requests",
    "local_hits",
    "peer_hits",
    "misses",
    "revalidations_304",
    "stale_served",
    "bypassed",
    "api_calls_made",
    "api_calls_saved",
    "coalesced_waits",
    "errors",
    "integrity_failures",
    "fleet_errors",
    "too_large_to_share",
    "graphql_calls",
)

_OUTCOME_COUNTER = {
    Outcome.HIT_LOCAL: "local_hits",
    Outcome.HIT_PEER: "peer_hits",
    Outcome.MISS: "misses",
    Outcome.REVALIDATED: "revalidations_304",
    Outcome.STALE: "stale_served",
    Outcome.BYPASS: "bypassed",
}


class Stats:
    """Thread-safe counters. Every figure is counted where it happens, never estimated."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._rate_limit_remaining: int | None = None
        self._graphql_remaining: int | None = None

    def add(self, name: str, amount: int = 1) -> None:
        """Increase counter ``name``."""
        with self._lock:
            self._counts[name] += amount

    def record(self, outcome: Outcome, upstream_calls: int) -> None:
        """Account for one finished request: its outcome and how many calls it sent upstream."""
        with self._lock:
            self._counts["requests"] += 1
            self._counts[_OUTCOME_COUNTER[outcome]] += 1
            if upstream_calls == 0:
                self._counts["api_calls_saved"] += 1

    def upstream_call(self, remaining: int | None, *, graphql: bool = False) -> None:
        """Account for one request sent to GitHub (retries each count). A GraphQL call is
        also a ``graphql_calls``, and its ``remaining`` is the separate GraphQL budget's."""
        with self._lock:
            self._counts["api_calls_made"] += 1
            if graphql:
                self._counts["graphql_calls"] += 1
                if remaining is not None:
                    self._graphql_remaining = remaining
            elif remaining is not None:
                self._rate_limit_remaining = remaining

    def snapshot(self) -> dict[str, int | float | None]:
        """All counters plus ``rate_limit_remaining`` (REST), ``graphql_rate_limit_remaining``
        and ``hit_rate``."""
        with self._lock:
            counts: dict[str, int | float | None] = dict(self._counts)
            remaining = self._rate_limit_remaining
            graphql_remaining = self._graphql_remaining
        requests = int(counts["requests"] or 0)
        hits = int(counts["local_hits"] or 0) + int(counts["peer_hits"] or 0)
        counts["rate_limit_remaining"] = remaining
        counts["graphql_rate_limit_remaining"] = graphql_remaining
        counts["hit_rate"] = round(hits / requests, 4) if requests else 0.0
        return counts

    def merge(self, other: Mapping[str, int | float | None]) -> None:
        """Add another snapshot's counters (used to total a fleet)."""
        with self._lock:
            for name in COUNTERS:
                value = other.get(name)
                if isinstance(value, int):
                    self._counts[name] += value
