"""The work queue as runners (and the MCP tools) use it: :class:`WorkQueue` and its values.

Implementations: :class:`~github_p2p.workqueue.local.LocalWorkQueue` (this process runs the
queue), :class:`~github_p2p.workqueue.fleet.FleetWorkQueue` (sealed, relayed to the queue's
hub), :class:`~github_p2p.workqueue.daemon.DaemonQueues` (what the runner daemon serves: fleet
or local per queue, and it remembers the lease tokens it handed out) and
:class:`~github_p2p.workqueue.client.EndpointWorkQueue` (a daemon's ``/_p2p/queue`` over HTTP).

Errors: :class:`~github_p2p.errors.QueueConflictError`, :class:`~github_p2p.errors.
QueueNotFoundError`, :class:`~github_p2p.errors.StaleLeaseError`, :class:`~github_p2p.errors.
QueueLimitError`, and :class:`~github_p2p.errors.FleetUnavailableError` when the queue's hub
cannot be reached right now (retry later: the queue is durable there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeAlias

from github_p2p.core.queue import CompletionOutcome, ItemState, QueueCounts, QueuePolicy
from github_p2p.core.queueseal import QueueRef
from github_p2p.errors import (
    CacheStoreError,
    ConfigError,
    FleetUnavailableError,
    GitHubP2PError,
    IntegrityError,
    QueueConflictError,
    QueueLimitError,
    QueueNotFoundError,
    StaleLeaseError,
)

__all__ = [
    "ERROR_CODES",
    "Claim",
    "ClaimResult",
    "Completion",
    "Holder",
    "QueueMode",
    "QueuePolicy",
    "QueueRef",
    "QueueStatus",
    "Renewal",
    "SubmitResult",
    "WorkQueue",
    "describe_conflict",
    "holders_of",
]

#: The error class behind each ``error`` code of the HTTP queue API (see ``.routes``).
ERROR_CODES: Final[dict[str, type[GitHubP2PError]]] = {
    "conflict": QueueConflictError, "stale": StaleLeaseError, "not_found": QueueNotFoundError,
    "limit": QueueLimitError, "bad_request": ConfigError,
    "fleet_unavailable": FleetUnavailableError, "integrity": IntegrityError,
    "store": CacheStoreError,
}

#: Where a queue runs: at the fleet's hub, or in this runner's daemon alone.
QueueMode: TypeAlias = Literal["fleet", "local"]


@dataclass(frozen=True)
class SubmitResult:
    """A submission was taken: ``created`` the queue or matched the identical one there.

    ``carried`` items succeeded in an earlier attempt of the run and will not run again.
    ``notice`` is for the user (for example: no fleet, this runner works through it alone).
    """

    created: bool
    total: int
    carried: int
    mode: QueueMode = "fleet"
    notice: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``/_p2p/queue/submit``, ``queue submit``)."""
        return {"created": self.created, "total": self.total, "carried": self.carried,
                "mode": self.mode, **({"notice": self.notice} if self.notice else {})}


@dataclass(frozen=True)
class Claim:
    """A claimed item: run it, heartbeat within ``lease_ttl``, then complete it.

    ``id`` is the item's position in the submitted list; ``attempt`` counts its deliveries.
    """

    id: int
    item: str
    token: str = field(repr=False)
    lease_ttl: float
    attempt: int = 1
    mode: QueueMode = "fleet"

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``queue next`` prints ``id`` and ``item`` of it)."""
        return {"id": self.id, "item": self.item, "token": self.token,
                "lease_ttl": self.lease_ttl, "attempt": self.attempt, "mode": self.mode}


@dataclass(frozen=True)
class Holder:
    """A current lease: who holds item ``id`` and for how much longer (seconds)."""

    holder: str
    id: int
    expires_in: float


@dataclass(frozen=True)
class QueueStatus:
    """Items by state, and the current leases."""

    counts: QueueCounts
    holders: tuple[Holder, ...] = ()
    mode: QueueMode = "fleet"

    @property
    def drained(self) -> bool:
        """Nothing is left to run or running: every item is done or failed."""
        return self.counts.drained

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``queue status``."""
        c = self.counts
        return {"ready": c.ready, "leased": c.leased, "done": c.done, "failed": c.failed,
                "carried": c.carried, "total": c.total, "drained": self.drained,
                "mode": self.mode,
                "holders": [{"holder": h.holder, "id": h.id, "expires_in": h.expires_in}
                            for h in self.holders]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueueStatus:
        """Inverse of :meth:`to_json` (KeyError/TypeError/ValueError on a bad document)."""
        counts = QueueCounts(int(data["ready"]), int(data["leased"]), int(data["done"]),
                             int(data["failed"]), int(data.get("carried", 0)))
        holders = tuple(Holder(str(h["holder"]), int(h["id"]), float(h["expires_in"]))
                        for h in data.get("holders", []))
        mode: QueueMode = "local" if data.get("mode") == "local" else "fleet"
        return cls(counts, holders, mode)


#: What a claim gives: an item, or the status when none could be had within the wait.
ClaimResult: TypeAlias = Claim | QueueStatus


@dataclass(frozen=True)
class Renewal:
    """A heartbeat was taken: the lease on item ``id`` now runs ``expires_in`` more seconds."""

    id: int
    expires_in: float


@dataclass(frozen=True)
class Completion:
    """A completion was taken: item ``id`` is now ``state``; ``outcome`` is ``done``,
    ``failed``, ``retry`` (failed, back in the queue) or ``repeat`` (already reported)."""

    id: int
    state: ItemState
    outcome: CompletionOutcome


class WorkQueue(Protocol):
    """A run's work queues (async; the trio-based implementations need trio).

    Every leg of a matrix submits the same list; the first submission creates the queue and
    identical ones are no-ops. Each leg then claims items until a claim returns a drained
    :class:`QueueStatus`, heartbeating while it works and completing each item.
    """

    async def submit(self, ref: QueueRef, items: Sequence[str],
                     policy: QueuePolicy | None = None) -> SubmitResult:
        """Create the queue ``ref`` with ``items`` (in order), or confirm the identical one.

        ``policy`` (lease TTL, attempts, retry of failed items) is the first submitter's.
        Raises :class:`~github_p2p.errors.QueueConflictError` naming both lists when another
        list is stored under ``ref``.
        """

    async def claim(self, ref: QueueRef, *, holder: str = "",
                    wait: float = 0.0) -> ClaimResult:
        """Lease the next item; while others hold leases and none is ready, wait up to
        ``wait`` s. A :class:`QueueStatus` when none was claimed (check ``drained``)."""

    async def heartbeat(self, ref: QueueRef, item_id: int, token: str) -> Renewal:
        """Extend the lease (renew well within ``lease_ttl``)."""

    async def complete(self, ref: QueueRef, item_id: int, token: str, *,
                       ok: bool = True) -> Completion:
        """Report the item done (``ok``) or failed. Safe to repeat; a stale lease is refused
        with :class:`~github_p2p.errors.StaleLeaseError` saying why."""

    async def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """Counts by state and holders; with ``wait`` > 0, returns once drained (or when the
        wait ends)."""


def holders_of(raw: Sequence[tuple[str, int, float]]) -> tuple[Holder, ...]:
    """:class:`Holder` values from ``(holder, index, expires_in)`` triples."""
    return tuple(Holder(holder, index, expires_in) for holder, index, expires_in in raw)


def describe_conflict(ref: QueueRef, submitted: Sequence[str], index: int, stored_total: int,
                      stored_item: str | None) -> str:
    """The error for a different list under ``ref``, naming both lists where they differ."""
    here = repr(submitted[index]) if index < len(submitted) else "(end of list)"
    there = repr(stored_item) if stored_item is not None else "(end of list)"
    return (f"queue {ref} already holds another list: {stored_total} items there, "
            f"{len(submitted)} in this submission; they first differ at item {index}: "
            f"{there} there, {here} here")
