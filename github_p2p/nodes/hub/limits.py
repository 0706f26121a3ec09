"""What one member may cost a hub: streams, buffered bytes, time, and lease waits.

A member holds the network key, so it can open streams, send frames it never finishes, ask for
large replies it never reads, and ask to wait for fills. Unbounded, each of these took a hub
down (issue 12: 8 non-reading streams of 4 MB replies grew it to 4 GB; 600 lease waits took
its 512 request slots and an honest request waited 35 s). :class:`HubGuard` bounds them:

* **streams**: at most ``max_streams_per_connection`` on one connection and
  ``max_streams_per_peer`` for one peer id; a stream past either is reset before it is read;
* **bytes**: a reply carrying an envelope, a frame being received, and a decoded request's
  payload waiting for its handler each hold bytes of one hub-wide :class:`ByteBudget`. A peer
  holds at most its fair share: the budget divided among the peers holding bytes (itself
  included, never more than half), and never less than one largest reply. A reply that does not
  fit waits *holding nothing* (its envelope is dropped and read again once there is room), so
  waiting replies cost no memory; a frame that does not fit ends its stream at once (a stream
  left unread would fill its muxer's receive window meanwhile);
* **time**: once a frame has begun it must arrive whole within ``frame_deadline`` (slow or
  stalled writers), and a reply must be taken within ``write_timeout`` (slow readers); either
  ends the stream, which gives its bytes back;
* **waits** (a lease waiting for another runner's fill, a work-queue claim or status waiting for
  items) hold none of the hub's request slots; a peer's waiting requests past
  ``max_lease_waits_per_peer`` (or the hub's past ``max_lease_waits``) are answered at once,
  without waiting.

All waiting uses trio's clock.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from github_p2p.errors import ConfigError, FleetError
from github_p2p.nodes.hub.envelopes import StoredEnvelope
from github_p2p.p2p.channel import READ_SIZE
from github_p2p.p2p.messages import Entry, Error, Lease, LeaseReply, Response
from github_p2p.p2p.queue_messages import QueueClaim, QueueStatusQuery
from github_p2p.p2p.wire import WireLimits

__all__ = ["WAITING_TYPES", "ByteBudget", "FrameHold", "Hold", "HubGuard", "HubLimits",
           "OverBudget"]

K = TypeVar("K")
#: Requests that may wait at the hub (their ``wait`` field): for a fill, for queue items.
WAITING_TYPES = (Lease, QueueClaim, QueueStatusQuery)
Waiting = Lease | QueueClaim | QueueStatusQuery
_MiB = 1024 * 1024
#: Room for a reply's meta and framing around its envelope.
_FRAMING = 4096


@dataclass(frozen=True)
class HubLimits:
    """The bounds a hub holds every member to (see the module)."""

    max_streams_per_connection: int = 8
    max_streams_per_peer: int = 8
    #: Bytes of buffered replies, partial frames and waiting payloads, hub-wide.
    buffer_budget: int = 64 * _MiB
    #: Longest a reply waits for room in the budget before the asker is told the hub is busy.
    budget_wait: float = 5.0
    #: Longest a frame may take to arrive once its first byte has.
    frame_deadline: float = 10.0
    #: Longest a reply may take to be written (the peer reads too slowly, or not at all).
    write_timeout: float = 10.0
    max_lease_waits_per_peer: int = 64
    max_lease_waits: int = 4096
    wire: WireLimits = dataclasses.field(default_factory=WireLimits)

    def __post_init__(self) -> None:
        for name in ("max_streams_per_connection", "max_streams_per_peer",
                     "max_lease_waits_per_peer", "max_lease_waits"):
            if getattr(self, name) < 1:
                raise ConfigError(f"HubLimits.{name} must be at least 1")
        for name in ("budget_wait", "frame_deadline", "write_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"HubLimits.{name} must be a positive number of seconds")
        if self.buffer_budget < 2 * self.largest_hold:
            raise ConfigError("HubLimits.buffer_budget must hold two of the largest replies")

    @property
    def largest_hold(self) -> int:
        """The most one reply or one frame can need: an envelope and its encoded frame."""
        return 2 * self.wire.max_envelope + _FRAMING + READ_SIZE


class OverBudget(FleetError):
    """A peer's partial frame found no room in the budget in time: its stream ends."""


class ByteBudget:
    """Bytes held hub-wide, per peer, with a fair share each (see the module)."""

    def __init__(self, total: int, floor: int) -> None:
        self.total = total
        self.floor = floor
        self.used = 0
        self.peak = 0
        self.waits = 0
        self.refusals = 0
        self._held: dict[str, int] = {}
        self._room = trio.Event()

    def held(self, peer: str) -> int:
        """Bytes ``peer`` holds now."""
        return self._held.get(peer, 0)

    def share(self, peer: str) -> int:
        """The most ``peer`` may hold now."""
        others = sum(1 for who, n in self._held.items() if n > 0 and who != peer)
        return max(self.floor, self.total // max(2, others + 1))

    def fits(self, peer: str, amount: int) -> bool:
        """Whether ``peer`` may take ``amount`` more bytes now."""
        return (self.used + amount <= self.total
                and self.held(peer) + amount <= self.share(peer))

    def take_now(self, peer: str, amount: int) -> bool:
        """Take ``amount`` bytes for ``peer`` if they fit now."""
        if amount <= 0:
            return True
        if not self.fits(peer, amount):
            return False
        self.used += amount
        self.peak = max(self.peak, self.used)
        self._held[peer] = self.held(peer) + amount
        return True

    async def take(self, peer: str, amount: int, timeout: float) -> bool:
        """Take ``amount`` bytes for ``peer``, waiting up to ``timeout`` s for room."""
        if self.take_now(peer, amount):
            return True
        self.waits += 1
        with trio.move_on_after(timeout):
            while not self.take_now(peer, amount):
                await self._room.wait()
            return True
        self.refusals += 1
        return False

    def give(self, peer: str, amount: int) -> None:
        """Give back ``amount`` bytes ``peer`` held."""
        if amount <= 0:
            return
        self.used -= amount
        left = self.held(peer) - amount
        if left > 0:
            self._held[peer] = left
        else:
            self._held.pop(peer, None)
        self._room.set()
        self._room = trio.Event()


class Hold:
    """Bytes one peer holds until :meth:`release`."""

    def __init__(self, budget: ByteBudget | None, peer: str, amount: int) -> None:
        self._budget = budget
        self.peer = peer
        self.amount = amount

    def release(self) -> None:
        """Give the bytes back (once)."""
        if self._budget is not None and self.amount:
            self._budget.give(self.peer, self.amount)
        self.amount = 0


class FrameHold:
    """The bytes of the frame a stream is receiving, and its deadline."""

    def __init__(self, budget: ByteBudget, peer: str, limits: HubLimits) -> None:
        self._hold = Hold(budget, peer, 0)
        self._budget = budget
        self._limits = limits
        self._frame_deadline: float | None = None

    @property
    def in_frame(self) -> bool:
        """Whether a frame has begun and not yet arrived whole."""
        return self._frame_deadline is not None

    def before_read(self, scope: trio.CancelScope) -> Callable[[int], Any]:
        """The ``before_read`` hook of one receive under ``scope`` (see
        :meth:`~github_p2p.p2p.channel.MessageChannel.receive`)."""
        async def hook(pending: int) -> None:
            if pending == 0:
                self._frame_deadline = None
                self.settle(0)
                return
            if self._frame_deadline is None:
                # A frame has begun: it must be whole soon, idle stream or not.
                self._frame_deadline = trio.current_time() + self._limits.frame_deadline
                scope.deadline = min(scope.deadline, self._frame_deadline)
            need = pending + READ_SIZE
            extra = need - self._hold.amount
            if extra > 0:
                # No waiting: a stream left unread meanwhile would fill its muxer's window.
                if not self._budget.take_now(self._hold.peer, extra):
                    raise OverBudget("no room for this peer's partial frame")
                self._hold.amount = need
        return hook

    def settle(self, pending: int) -> None:
        """Keep only what a frame of ``pending`` bytes needs (after a message came out)."""
        need = pending + READ_SIZE if pending else 0
        if need < self._hold.amount:
            self._budget.give(self._hold.peer, self._hold.amount - need)
            self._hold.amount = need
        if not pending:
            self._frame_deadline = None

    def release(self) -> None:
        """Give everything back (the stream ended)."""
        self._hold.release()


def reply_cost(reply: Response) -> int:
    """Bytes a reply holds until written: its envelope and the frame encoding it."""
    envelope = getattr(reply, "envelope", b"")
    return 2 * len(envelope) + _FRAMING if envelope else 0


class HubGuard:
    """The hub's bounds, as hooks its stream loop and request handler call."""

    def __init__(self, limits: HubLimits | None = None) -> None:
        self.limits = limits or HubLimits()
        self.budget = ByteBudget(self.limits.buffer_budget, self.limits.largest_hold)
        self._streams_by_conn: dict[int, int] = {}
        self._streams_by_peer: dict[str, int] = {}
        self._lease_waits: dict[str, int] = {}
        self._lease_total = 0
        self.counts = dict.fromkeys(("streams_refused", "frame_timeouts", "budget_drops",
                                     "replies_deferred", "replies_refused",
                                     "lease_waits_capped"), 0)

    def stats(self) -> dict[str, int]:
        """The guard's figures for the hub's ``/_p2p/stats``."""
        return {**self.counts, "buffer_budget": self.budget.total,
                "buffered_bytes": self.budget.used, "buffered_bytes_peak": self.budget.peak,
                "lease_waits": self._lease_total}

    # -- streams ---------------------------------------------------------------------------

    def open_stream(self, peer: str, connection: object) -> bool:
        """Count a new stream; ``False`` (count nothing) when it is one too many."""
        key = id(connection)
        limits = self.limits
        if (self._streams_by_conn.get(key, 0) >= limits.max_streams_per_connection
                or self._streams_by_peer.get(peer, 0) >= limits.max_streams_per_peer):
            self.counts["streams_refused"] += 1
            return False
        self._streams_by_conn[key] = self._streams_by_conn.get(key, 0) + 1
        self._streams_by_peer[peer] = self._streams_by_peer.get(peer, 0) + 1
        return True

    def close_stream(self, peer: str, connection: object) -> None:
        """A stream counted by :meth:`open_stream` ended."""
        _decrement(self._streams_by_conn, id(connection))
        _decrement(self._streams_by_peer, peer)

    def frames(self, peer: str) -> FrameHold:
        """The frame budget of a new stream of ``peer``."""
        return FrameHold(self.budget, peer, self.limits)

    def payload(self, peer: str, message: object) -> Hold | None:
        """Hold a decoded request's payload until it is handled; ``None`` when it does not
        fit (the request is then refused as busy)."""
        size = len(getattr(message, "envelope", b"") or b"")
        if not self.budget.take_now(peer, size):
            self.counts["budget_drops"] += 1
            return None
        return Hold(self.budget, peer, size)

    # -- replies ---------------------------------------------------------------------------

    async def reply(self, peer: str, pending: list[Response],
                    reread: Callable[[bytes], Awaitable[StoredEnvelope | None]]
                    ) -> tuple[Response, Hold]:
        """The reply taken out of ``pending`` (or what replaces it), and the bytes it holds
        until written.

        The reply is taken out of the list so that nothing keeps its envelope while it waits:
        a reply that does not fit the peer's share drops its envelope, waits for room, then
        reads it again (``reread``); what is gone by then, or finds no room in time, becomes an
        answer without an envelope. A lease grant is never held up: its stale envelope (an
        extra) is dropped at once.
        """
        reply = pending.pop()
        cost = reply_cost(reply)
        if self.budget.take_now(peer, cost):
            return reply, Hold(self.budget, peer, cost)
        if not isinstance(reply, Entry | LeaseReply):
            return reply, Hold(None, peer, 0)  # small (a queue item is 4 KiB at most)
        bare = _without_envelope(reply)
        del reply  # nothing of the envelope is kept while waiting
        if isinstance(bare, LeaseReply) and bare.outcome in ("granted", "timeout"):
            return bare, Hold(None, peer, 0)
        self.counts["replies_deferred"] += 1
        if await self.budget.take(peer, cost, self.limits.budget_wait):
            stored = await reread(bare.entry_id)  # type: ignore[union-attr]
            if stored is not None and 2 * len(stored.envelope) + _FRAMING <= cost:
                return _with_envelope(bare, stored), Hold(self.budget, peer, cost)
            self.budget.give(peer, cost)
        self.counts["replies_refused"] += 1
        return _instead(bare), Hold(None, peer, 0)

    # -- lease waits -----------------------------------------------------------------------

    @contextmanager
    def waiting(self, peer: str, message: Waiting) -> Iterator[Waiting]:
        """The waiting request to answer (without waiting when the peer or the hub has too
        many waits), counted while it is being answered."""
        limits = self.limits
        if (self._lease_waits.get(peer, 0) >= limits.max_lease_waits_per_peer
                or self._lease_total >= limits.max_lease_waits):
            self.counts["lease_waits_capped"] += 1
            message = dataclasses.replace(message, wait=0.0)
        self._lease_waits[peer] = self._lease_waits.get(peer, 0) + 1
        self._lease_total += 1
        try:
            yield message
        finally:
            self._lease_total -= 1
            _decrement(self._lease_waits, peer)


def _decrement(table: dict[K, int], key: K) -> None:
    left = table.get(key, 0) - 1
    if left > 0:
        table[key] = left
    else:
        table.pop(key, None)


def _without_envelope(reply: Response) -> Response:
    if isinstance(reply, Entry):
        # An Entry needs its envelope: keep the shape, the envelope comes back on reread.
        return dataclasses.replace(reply, envelope=b"\0")
    if isinstance(reply, LeaseReply):
        return dataclasses.replace(reply, envelope=b"\0", fresh=False) \
            if reply.outcome in ("hit", "filled") else \
            dataclasses.replace(reply, envelope=b"", fresh=False)
    return reply


def _with_envelope(bare: Response, stored: StoredEnvelope) -> Response:
    now = time.time()
    if isinstance(bare, Entry):
        return dataclasses.replace(bare, envelope=stored.envelope, fresh=stored.is_fresh(now),
                                   age=max(0.0, now - stored.stored_at))
    if isinstance(bare, LeaseReply) and bare.outcome in ("hit", "filled"):
        return dataclasses.replace(bare, envelope=stored.envelope, fresh=stored.is_fresh(now))
    return bare


def _instead(bare: Response) -> Response:
    """What to answer when a reply's envelope cannot be sent."""
    if isinstance(bare, Entry):
        return Error(bare.rid, "busy", "the hub has no room for this reply now")
    if isinstance(bare, LeaseReply) and bare.outcome in ("hit", "filled"):
        # The asker goes to GitHub, as after any lease timeout.
        return LeaseReply(bare.rid, bare.entry_id, "timeout")
    return bare
