"""The work queue's state machine (pure: no I/O, no clock; every transition takes ``now``).

A queue is an ordered list of items. Each item is ``ready`` (waiting for a runner), ``leased``
(a runner holds it: a random token and an expiry), ``done`` or ``failed``::

    ready ──claim──▶ leased ──complete(ok)──────────────▶ done
      ▲                │ ──complete(failed)──────────────▶ failed
      │                │ ──complete(failed), retries left ─┐
      └── lapse/release ┘ (attempts left; else failed)     │
      └────────────────────────────────────────────────────┘

*Attempts* count deliveries: every claim is one. A lease that lapses, or whose holder's
connection drops, puts the item back while attempts remain, so an item that keeps killing its
runners ends ``failed`` and stops coming back.

The lease token decides who may report. A completion with the token of the current (or, if
nobody has claimed the item since, the last) lease is accepted once; repeating it changes
nothing; any other token is refused with the reason. A *re-run* (attempt >= 2 of a workflow
run) starts with the items an earlier attempt finished ``done`` already done (``carried``), so
only what did not succeed runs again.

Stores keep :class:`ItemRecord` values and apply these functions atomically; the functions
never look at anything but their arguments.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypeAlias, get_args

from github_p2p.errors import ConfigError, StaleLeaseError

__all__ = [
    "COMPLETION_OUTCOMES",
    "ITEM_STATES",
    "CompletionOutcome",
    "ItemRecord",
    "ItemState",
    "QueueCounts",
    "QueueKey",
    "QueueLimits",
    "QueueMeta",
    "QueuePolicy",
    "claim",
    "complete",
    "count",
    "first_difference",
    "lapse",
    "lapsed",
    "new_items",
    "next_expiry",
    "release",
    "renew",
]

ItemState: TypeAlias = Literal["ready", "leased", "done", "failed"]
#: How an accepted (or repeated) completion ended.
CompletionOutcome: TypeAlias = Literal["done", "failed", "retry", "repeat"]
ITEM_STATES: Final[tuple[ItemState, ...]] = get_args(ItemState)
COMPLETION_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(CompletionOutcome))
_MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class QueueKey:
    """Where a queue lives at a hub: the opaque id of (scope, run id, name) and the run attempt.

    Attempts of one run share ``queue_id``: that is how a re-run finds what already succeeded.
    """

    queue_id: bytes
    attempt: int

    def __post_init__(self) -> None:
        if not isinstance(self.queue_id, bytes) or len(self.queue_id) != 32:
            raise ConfigError("a queue id is 32 bytes")
        if isinstance(self.attempt, bool) or not isinstance(self.attempt, int) or not (
                1 <= self.attempt <= 2**31 - 1):
            raise ConfigError("a run attempt is an integer from 1")


@dataclass(frozen=True)
class QueuePolicy:
    """Per-queue settings, fixed by whoever submits first.

    ``lease_ttl``: seconds a claim holds an item without a heartbeat. ``max_attempts``:
    deliveries of one item before it is ``failed`` for good. ``retry_failed``: a ``failed``
    report puts the item back (while attempts remain) instead of ending it.
    """

    lease_ttl: float = 60.0
    max_attempts: int = 3
    retry_failed: bool = False

    def __post_init__(self) -> None:
        ttl = self.lease_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not (
                math.isfinite(ttl) and 1.0 <= ttl <= 86_400.0):
            raise ConfigError("lease_ttl must be 1..86400 seconds")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or not (
                1 <= self.max_attempts <= 100):
            raise ConfigError("max_attempts must be an integer in 1..100")
        if not isinstance(self.retry_failed, bool):
            raise ConfigError("retry_failed must be a boolean")


@dataclass(frozen=True)
class QueueLimits:
    """Hard bounds a hub (or a local daemon) enforces on queues."""

    max_items: int = 10_000
    #: Bytes of one item as submitted (UTF-8 text: a test file, a test id, a shard name).
    max_item_bytes: int = 1024
    #: Bytes of one sealed item as the hub stores it (the item plus the sealing overhead).
    max_envelope_bytes: int = 1024 + 64
    max_queues_per_peer: int = 32
    max_queues: int = 4096
    #: Longest a claim or a status request may wait at the hub, seconds.
    max_wait: float = 30.0
    #: Idle queues are forgotten after this long (a workflow can be re-run for 30 days).
    retention: float = 31 * 86_400.0
    #: Bound on the holders a status lists.
    max_holders: int = 256

    def __post_init__(self) -> None:
        for name in ("max_items", "max_item_bytes", "max_envelope_bytes", "max_queues_per_peer",
                     "max_queues", "max_holders"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"QueueLimits.{name} must be a positive integer")
        for name in ("max_wait", "retention"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"QueueLimits.{name} must be positive")
        if self.max_items * (self.max_envelope_bytes + 48) > 64 * _MiB:
            raise ConfigError("QueueLimits: a full queue would exceed 64 MiB")


@dataclass(frozen=True)
class QueueMeta:
    """What a store keeps about a queue besides its items."""

    key: QueueKey
    policy: QueuePolicy
    total: int
    owner: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ItemRecord:
    """One item of a queue as the hub keeps it: an index, opaque bytes and its state.

    ``digest`` identifies the item's content (keyed, so the hub learns only equality);
    ``envelope`` is the sealed item. ``token``/``holder``/``expires_at`` describe the current
    lease, or the last one once it ended; ``reported`` says that lease has reported.
    ``completions`` counts accepted reports (never repeats); ``carried`` marks an item done
    in an earlier attempt of the run.
    """

    index: int
    digest: bytes
    envelope: bytes = field(repr=False)
    state: ItemState = "ready"
    attempts: int = 0
    token: str | None = field(default=None, repr=False)
    holder: str = ""
    expires_at: float = 0.0
    reported: bool = False
    completions: int = 0
    carried: bool = False
    updated_at: float = 0.0


@dataclass(frozen=True)
class QueueCounts:
    """Items by state; ``carried`` (done in an earlier attempt) are counted in ``done``."""

    ready: int = 0
    leased: int = 0
    done: int = 0
    failed: int = 0
    carried: int = 0

    @property
    def total(self) -> int:
        """Every item of the queue."""
        return self.ready + self.leased + self.done + self.failed

    @property
    def drained(self) -> bool:
        """Nothing is left to run or running: every item is done or failed."""
        return self.ready == 0 and self.leased == 0


# --- building a queue -------------------------------------------------------------------------


def new_items(sealed: Sequence[tuple[bytes, bytes]], *, done_before: Iterable[bytes],
              now: float) -> list[ItemRecord]:
    """The records of a new queue from ``(digest, envelope)`` pairs in order.

    Items whose digest an earlier attempt of the run finished ``done`` start ``done`` and
    ``carried``: a re-run replays only what did not succeed.
    """
    finished = frozenset(done_before)
    return [ItemRecord(index, digest, envelope,
                       state="done" if digest in finished else "ready",
                       carried=digest in finished, updated_at=now)
            for index, (digest, envelope) in enumerate(sealed)]


def first_difference(existing: Sequence[bytes], submitted: Sequence[bytes]) -> int | None:
    """Index of the first item where two submissions differ (``None`` if identical)."""
    for index, (a, b) in enumerate(zip(existing, submitted, strict=False)):
        if a != b:
            return index
    if len(existing) != len(submitted):
        return min(len(existing), len(submitted))
    return None


# --- leases -----------------------------------------------------------------------------------


def claim(item: ItemRecord, *, holder: str, token: str, now: float,
          policy: QueuePolicy) -> ItemRecord:
    """Lease a ``ready`` item to ``holder`` under ``token`` (one more attempt)."""
    if item.state != "ready":
        raise ValueError(f"item {item.index} is {item.state}, not ready")
    return replace(item, state="leased", attempts=item.attempts + 1, token=token, holder=holder,
                   expires_at=now + policy.lease_ttl, reported=False, updated_at=now)


def lapsed(item: ItemRecord, now: float) -> bool:
    """The item's lease ran out without a heartbeat."""
    return item.state == "leased" and now >= item.expires_at


def _end_lease(item: ItemRecord, now: float, policy: QueuePolicy) -> ItemRecord:
    state: ItemState = "ready" if item.attempts < policy.max_attempts else "failed"
    return replace(item, state=state, updated_at=now)


def lapse(item: ItemRecord, now: float, policy: QueuePolicy) -> ItemRecord:
    """A lapsed lease ends: the item is ready again, or failed once attempts are spent.

    Anything else is returned unchanged (a store may call this on a stale read).
    """
    return _end_lease(item, now, policy) if lapsed(item, now) else item


def release(item: ItemRecord, token: str, now: float, policy: QueuePolicy) -> ItemRecord:
    """The holder of ``token`` went away (its connection dropped): end its lease now."""
    if item.state == "leased" and item.token == token:
        return _end_lease(item, now, policy)
    return item


def _refusal(item: ItemRecord, verb: str) -> StaleLeaseError:
    n = item.index
    if item.state == "leased":
        why = (f"item {n} is held by another lease now (yours lapsed, or was released when "
               "your connection dropped, and the item was handed out again)")
    elif item.state == "done":
        why = (f"item {n} was already completed by another holder"
               if not item.carried else f"item {n} succeeded in an earlier attempt of this run")
    elif item.state == "failed":
        why = f"item {n} already failed under another lease"
    else:
        why = f"your lease on item {n} is no longer valid (it lapsed and went back to the queue)"
    return StaleLeaseError(f"cannot {verb}: {why}")


def renew(item: ItemRecord, token: str, now: float, policy: QueuePolicy) -> ItemRecord:
    """A heartbeat: extend the lease of ``token`` by ``lease_ttl``.

    A lease that lapsed (or was released) while nobody claimed the item since is revived, so a
    runner cut off by a hub restart keeps its item. Raises :class:`StaleLeaseError` otherwise.
    """
    if item.token == token and not item.reported and item.state in ("leased", "ready"):
        return replace(item, state="leased", expires_at=now + policy.lease_ttl, updated_at=now)
    raise _refusal(item, "renew the lease")


def complete(item: ItemRecord, token: str, ok: bool, now: float,
             policy: QueuePolicy) -> tuple[ItemRecord, CompletionOutcome]:
    """Report the result of the lease ``token``; safe to repeat.

    Accepted once from the current lease, or from the last one if nobody claimed the item
    since (a late report still saves a re-run). A repeat returns ``repeat`` and changes
    nothing. Raises :class:`StaleLeaseError` for any other token.
    """
    if item.token != token:
        raise _refusal(item, "complete")
    if item.reported:
        return item, "repeat"
    if ok:
        state: ItemState = "done"
        outcome: CompletionOutcome = "done"
    elif policy.retry_failed and item.attempts < policy.max_attempts:
        state, outcome = "ready", "retry"
    else:
        state, outcome = "failed", "failed"
    return replace(item, state=state, reported=True, completions=item.completions + 1,
                   updated_at=now), outcome


# --- views ------------------------------------------------------------------------------------


def count(items: Iterable[ItemRecord]) -> QueueCounts:
    """Items by state."""
    tally = dict.fromkeys(ITEM_STATES, 0)
    carried = 0
    for item in items:
        tally[item.state] += 1
        carried += item.carried
    return QueueCounts(tally["ready"], tally["leased"], tally["done"], tally["failed"], carried)


def next_expiry(items: Iterable[ItemRecord]) -> float | None:
    """When the first current lease lapses (``None`` if nothing is leased)."""
    return min((item.expires_at for item in items if item.state == "leased"), default=None)
