"""Work-queue messages of the fleet protocol ``/github-p2p/cache/1.0.0`` (pure, no I/O).

They ride the same frames as the cache messages (see :mod:`github_p2p.p2p.wire`) and are
registered in its op table by :mod:`github_p2p.p2p.messages`. A queue is named by
``queue_id`` (32 bytes, hex on the wire) and ``attempt``; items travel sealed. Each class
validates its bounds in ``__post_init__`` (:class:`~github_p2p.errors.LocalProtocolError`).

=======  ====================  =======  ====================
op       request               op       response
=======  ====================  =======  ====================
``10``   QueueSubmit (items)   ``90``   QueueSubmitted
``11``   QueueClaim            ``91``   QueueClaimed (item)
``12``   QueueHeartbeat        ``92``   QueueAck
``13``   QueueComplete         ``93``   QueueStatusReply
``14``   QueueStatusQuery      ``94``   QueueRefused (item)
=======  ====================  =======  ====================

A :class:`QueueSubmit` carries its items as the frame's payload, packed as
``digest (32 bytes) | length (u16, big endian) | envelope`` per item, in queue order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal, TypeAlias, get_args

from github_p2p.p2p.fields import (
    ENTRY_ID_SIZE,
    blob,
    check_choice,
    check_entry_id,
    check_flag,
    check_rid,
    check_text,
    fail,
    number,
    set_field,
)

__all__ = [
    "MAX_ITEM_ENVELOPE",
    "MAX_QUEUE_ITEMS",
    "MAX_QUEUE_WAIT",
    "QUEUE_ACK_OUTCOMES",
    "QUEUE_REFUSALS",
    "QUEUE_REQUEST_TYPES",
    "QUEUE_RESPONSE_TYPES",
    "QueueAck",
    "QueueAckOutcome",
    "QueueClaim",
    "QueueClaimed",
    "QueueComplete",
    "QueueHeartbeat",
    "QueueRefusal",
    "QueueRefused",
    "QueueRequest",
    "QueueResponse",
    "QueueStatusQuery",
    "QueueStatusReply",
    "QueueSubmit",
    "QueueSubmitted",
    "pack_items",
    "unpack_items",
]

#: Wire bound on the items of one queue (a hub may set a lower limit).
MAX_QUEUE_ITEMS: Final = 10_000
#: Wire bound on one sealed item.
MAX_ITEM_ENVELOPE: Final = 4096
#: Longest a claim or status request may ask the hub to wait, seconds.
MAX_QUEUE_WAIT: Final = 60.0
_MAX_ATTEMPT: Final = 2**31 - 1
_LEN: Final = 2

QueueRefusal: TypeAlias = Literal["conflict", "not_found", "stale", "limit"]
QueueAckOutcome: TypeAlias = Literal["renewed", "done", "failed", "retry", "repeat"]
_ItemState: TypeAlias = Literal["ready", "leased", "done", "failed"]
QUEUE_REFUSALS: Final[frozenset[str]] = frozenset(get_args(QueueRefusal))
QUEUE_ACK_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(QueueAckOutcome))
_STATES: Final[frozenset[str]] = frozenset(get_args(_ItemState))


def _integer(value: object, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        fail(f"{name} must be an integer in {low}..{high}")


def _queue(rid: object, queue_id: object, attempt: object) -> None:
    check_rid(rid)
    check_entry_id(queue_id)
    _integer(attempt, "attempt", 1, _MAX_ATTEMPT)


def _index(value: object) -> None:
    _integer(value, "index", 0, MAX_QUEUE_ITEMS - 1)


def pack_items(items: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The payload of a :class:`QueueSubmit`: ``(digest, envelope)`` pairs in order."""
    out = bytearray()
    for digest, envelope in items:
        if len(digest) != ENTRY_ID_SIZE or not 0 < len(envelope) <= MAX_ITEM_ENVELOPE:
            fail("an item is a 32-byte digest and a 1..4096-byte envelope")
        out += digest + len(envelope).to_bytes(_LEN, "big") + envelope
    return bytes(out)


def unpack_items(payload: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """The ``(digest, envelope)`` pairs of a packed payload (bounded; LocalProtocolError)."""
    items: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(payload):
        if len(items) == MAX_QUEUE_ITEMS:
            fail(f"more than {MAX_QUEUE_ITEMS} items")
        head = pos + ENTRY_ID_SIZE + _LEN
        if head > len(payload):
            fail("the items payload ends inside an item header")
        size = int.from_bytes(payload[head - _LEN:head], "big")
        if not 0 < size <= MAX_ITEM_ENVELOPE or head + size > len(payload):
            fail("an item envelope is empty, too large or truncated")
        items.append((payload[pos:pos + ENTRY_ID_SIZE], payload[head:head + size]))
        pos = head + size
    return tuple(items)


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSubmit:
    """Create a queue (or confirm an identical one); ``envelope`` holds the packed items.

    Answered by :class:`QueueSubmitted` or :class:`QueueRefused` (``conflict``: another list
    exists under the key; ``limit``).
    """

    OP: ClassVar[int] = 0x10
    rid: int
    queue_id: bytes
    attempt: int
    lease_ttl: float
    max_attempts: int
    retry_failed: bool
    envelope: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _queue(self.rid, self.queue_id, self.attempt)
        set_field(self, "lease_ttl", number(self.lease_ttl, "lease_ttl", 1.0, 86_400.0))
        _integer(self.max_attempts, "max_attempts", 1, 100)
        check_flag(self.retry_failed, "retry_failed")
        set_field(self, "envelope", blob(self.envelope, "items", empty=True))
        unpack_items(self.envelope)  # refuse a malformed list here, at the edge

    def items(self) -> tuple[tuple[bytes, bytes], ...]:
        """The submitted ``(digest, envelope)`` pairs in order."""
        return unpack_items(self.envelope)


@dataclass(frozen=True)
class QueueClaim:
    """Lease the next ready item, waiting up to ``wait`` s while others hold leases.

    Answered by :class:`QueueClaimed`, or by :class:`QueueStatusReply` when nothing could be
    claimed (drained when no item is ready or leased).
    """

    OP: ClassVar[int] = 0x11
    rid: int
    queue_id: bytes
    attempt: int
    holder: str
    wait: float

    def __post_init__(self) -> None:
        _queue(self.rid, self.queue_id, self.attempt)
        check_text(self.holder, "holder")
        set_field(self, "wait", number(self.wait, "wait", 0.0, MAX_QUEUE_WAIT))


@dataclass(frozen=True)
class QueueHeartbeat:
    """Extend the lease ``lease_token`` on item ``index``; answered by :class:`QueueAck`."""

    OP: ClassVar[int] = 0x12
    rid: int
    queue_id: bytes
    attempt: int
    index: int
    lease_token: str

    def __post_init__(self) -> None:
        _queue(self.rid, self.queue_id, self.attempt)
        _index(self.index)
        check_text(self.lease_token, "lease_token")


@dataclass(frozen=True)
class QueueComplete:
    """Report item ``index`` done (``ok``) or failed; answered by :class:`QueueAck`."""

    OP: ClassVar[int] = 0x13
    rid: int
    queue_id: bytes
    attempt: int
    index: int
    lease_token: str
    ok: bool

    def __post_init__(self) -> None:
        _queue(self.rid, self.queue_id, self.attempt)
        _index(self.index)
        check_text(self.lease_token, "lease_token")
        check_flag(self.ok, "ok")


@dataclass(frozen=True)
class QueueStatusQuery:
    """Counts and holders; with ``wait`` > 0, answered once drained or when the wait ends."""

    OP: ClassVar[int] = 0x14
    rid: int
    queue_id: bytes
    attempt: int
    wait: float = 0.0

    def __post_init__(self) -> None:
        _queue(self.rid, self.queue_id, self.attempt)
        set_field(self, "wait", number(self.wait, "wait", 0.0, MAX_QUEUE_WAIT))


# --- responses --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSubmitted:
    """The queue exists: ``created`` by this request (else an identical one was there)."""

    OP: ClassVar[int] = 0x90
    rid: int
    created: bool
    total: int
    carried: int

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_flag(self.created, "created")
        _integer(self.total, "total", 0, MAX_QUEUE_ITEMS)
        _integer(self.carried, "carried", 0, self.total)


@dataclass(frozen=True)
class QueueClaimed:
    """Item ``index`` (sealed in ``envelope``) is leased under ``lease_token`` for
    ``lease_ttl`` s; ``attempts`` counts its deliveries, this one included."""

    OP: ClassVar[int] = 0x91
    rid: int
    index: int
    lease_token: str
    lease_ttl: float
    attempts: int
    envelope: bytes = field(repr=False)

    def __post_init__(self) -> None:
        check_rid(self.rid)
        _index(self.index)
        check_text(self.lease_token, "lease_token")
        set_field(self, "lease_ttl", number(self.lease_ttl, "lease_ttl", 1.0, 86_400.0))
        _integer(self.attempts, "attempts", 1, 100)
        envelope = blob(self.envelope, "envelope", empty=False)
        if len(envelope) > MAX_ITEM_ENVELOPE:
            fail("the item envelope is too large")
        set_field(self, "envelope", envelope)


@dataclass(frozen=True)
class QueueAck:
    """A heartbeat (``renewed``, lease good for ``expires_in`` s) or a completion was taken.

    ``state`` is the item's state after it; ``repeat`` means the report was already in.
    """

    OP: ClassVar[int] = 0x92
    rid: int
    index: int
    state: _ItemState
    outcome: QueueAckOutcome
    expires_in: float = 0.0

    def __post_init__(self) -> None:
        check_rid(self.rid)
        _index(self.index)
        check_choice(self.state, "state", _STATES)
        check_choice(self.outcome, "outcome", QUEUE_ACK_OUTCOMES)
        set_field(self, "expires_in", number(self.expires_in, "expires_in", 0.0, 86_400.0))


@dataclass(frozen=True)
class QueueStatusReply:
    """Items by state (``carried``: done in an earlier attempt, counted in ``done``) and the
    current leases as ``(holder, index, expires_in)``."""

    OP: ClassVar[int] = 0x93
    rid: int
    ready: int
    leased: int
    done: int
    failed: int
    carried: int
    holders: Sequence[tuple[str, int, float]] = ()

    def __post_init__(self) -> None:
        check_rid(self.rid)
        for name in ("ready", "leased", "done", "failed", "carried"):
            _integer(getattr(self, name), name, 0, MAX_QUEUE_ITEMS)
        if self.ready + self.leased + self.done + self.failed > MAX_QUEUE_ITEMS:
            fail("more items than a queue may hold")
        if not isinstance(self.holders, list | tuple) or len(self.holders) > self.leased:
            fail("holders must be a list of at most one entry per lease")
        holders = []
        for entry in self.holders:
            if not isinstance(entry, list | tuple) or len(entry) != 3:
                fail("a holder is [holder, index, expires_in]")
            holder, index, expires_in = entry
            check_text(holder, "holder")
            _index(index)
            holders.append((holder, index, number(expires_in, "expires_in", 0.0, 86_400.0)))
        set_field(self, "holders", tuple(holders))


@dataclass(frozen=True)
class QueueRefused:
    """The request was refused (``reason``), explained in ``message``.

    A ``conflict`` names the first differing ``index`` and the existing queue's ``total``,
    with the existing item there sealed in ``envelope`` (empty past its end), so the runner
    can name both lists.
    """

    OP: ClassVar[int] = 0x94
    rid: int
    reason: QueueRefusal
    message: str = ""
    index: int | None = None
    total: int | None = None
    envelope: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_choice(self.reason, "reason", QUEUE_REFUSALS)
        check_text(self.message, "message", limit=1024, empty=True)
        if self.index is not None:
            _integer(self.index, "index", 0, MAX_QUEUE_ITEMS)
        if self.total is not None:
            _integer(self.total, "total", 0, MAX_QUEUE_ITEMS)
        envelope = blob(self.envelope, "envelope", empty=True)
        if len(envelope) > MAX_ITEM_ENVELOPE:
            fail("the item envelope is too large")
        set_field(self, "envelope", envelope)


QueueRequest: TypeAlias = (
    QueueSubmit | QueueClaim | QueueHeartbeat | QueueComplete | QueueStatusQuery
)
QueueResponse: TypeAlias = (
    QueueSubmitted | QueueClaimed | QueueAck | QueueStatusReply | QueueRefused
)
#: Queue request classes, for ``isinstance`` checks and the op table.
QUEUE_REQUEST_TYPES: Final = (
    QueueSubmit, QueueClaim, QueueHeartbeat, QueueComplete, QueueStatusQuery
)
#: Queue response classes.
QUEUE_RESPONSE_TYPES: Final = (
    QueueSubmitted, QueueClaimed, QueueAck, QueueStatusReply, QueueRefused
)
