"""A work queue kept by the fleet's hub: items sealed here, operations relayed over the link.

Each queue lives on exactly one hub, chosen by rendezvous hashing of its queue id over the hubs
this runner knows (connected or not), so every runner with the same bootstrap list picks the
same one. There is no failover for queues: a second copy at another hub would run every item
twice, so while the queue's hub is away operations fail with
:class:`~github_p2p.errors.FleetUnavailableError` and callers retry (the queue is durable
there and a restarted hub carries on where it stopped).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from github_p2p.core.queue import QueueCounts, QueueKey, QueueLimits, QueuePolicy
from github_p2p.core.queueseal import QueueRef, QueueSealer, check_item
from github_p2p.errors import (
    FleetUnavailableError,
    LocalProtocolError,
    QueueConflictError,
    QueueLimitError,
    QueueNotFoundError,
    StaleLeaseError,
)
from github_p2p.p2p.link import HubLink
from github_p2p.p2p.messages import Request, Response
from github_p2p.p2p.queue_messages import (
    QueueAck,
    QueueClaim,
    QueueClaimed,
    QueueComplete,
    QueueHeartbeat,
    QueueRefused,
    QueueStatusQuery,
    QueueStatusReply,
    QueueSubmit,
    QueueSubmitted,
    pack_items,
)
from github_p2p.p2p.rendezvous import rank_hubs
from github_p2p.workqueue.api import (
    Claim,
    ClaimResult,
    Completion,
    QueueStatus,
    Renewal,
    SubmitResult,
    describe_conflict,
    holders_of,
)

__all__ = ["FleetWorkQueue"]

_REFUSALS: dict[str, type[Exception]] = {
    "not_found": QueueNotFoundError,
    "stale": StaleLeaseError,
    "limit": QueueLimitError,
    "conflict": QueueConflictError,
}


class FleetWorkQueue:
    """A :class:`~github_p2p.workqueue.api.WorkQueue` at the fleet's hub."""

    def __init__(self, links: Callable[[], Sequence[HubLink]], sealer: QueueSealer, *,
                 holder: str = "runner", request_timeout: float = 10.0,
                 connect_wait: float = 10.0, limits: QueueLimits | None = None) -> None:
        self._links = links
        self.sealer = sealer
        self.holder = holder
        self.request_timeout = request_timeout
        #: How long an operation waits for the queue's hub to be connected.
        self.connect_wait = connect_wait
        self.limits = limits or QueueLimits()

    def hub_for(self, key: QueueKey) -> str | None:
        """The peer id of the hub that keeps queue ``key`` (``None`` without hubs)."""
        hubs = sorted({link.hub_id for link in self._links()})
        return rank_hubs(hubs, key.queue_id)[0] if hubs else None

    async def _link(self, key: QueueKey) -> HubLink:
        hub = self.hub_for(key)
        if hub is None:
            raise FleetUnavailableError("no hub is configured")
        with trio.move_on_after(self.connect_wait):
            while True:
                for link in self._links():
                    if link.hub_id == hub and link.connected:
                        return link
                await trio.sleep(0.1)
        raise FleetUnavailableError(f"the queue's hub {hub} is not connected")

    async def _call(self, ref: QueueRef, make: Callable[[int], Request],
                    wait: float = 0.0) -> Response:
        link = await self._link(self.sealer.key(ref))
        try:
            reply = await link.call(make, wait + self.request_timeout)
        except LocalProtocolError as exc:
            raise QueueLimitError(f"queue {ref}: {exc}") from exc
        if isinstance(reply, QueueRefused) and reply.reason != "conflict":
            raise _REFUSALS[reply.reason](f"queue {ref}: {reply.message}")
        return reply

    @staticmethod
    def _unexpected(reply: Response) -> FleetUnavailableError:
        return FleetUnavailableError(f"unexpected reply from the hub: {type(reply).__name__}")

    async def submit(self, ref: QueueRef, items: Sequence[str],
                     policy: QueuePolicy | None = None) -> SubmitResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        items = [check_item(item, self.limits) for item in items]
        if len(items) > self.limits.max_items:
            raise QueueLimitError(f"{len(items)} items; a queue holds at most "
                                  f"{self.limits.max_items}")
        policy = policy or QueuePolicy()
        key = self.sealer.key(ref)
        payload = pack_items([(self.sealer.digest(ref, item), self.sealer.seal(ref, index, item))
                              for index, item in enumerate(items)])
        reply = await self._call(ref, lambda rid: QueueSubmit(
            rid, key.queue_id, key.attempt, policy.lease_ttl, policy.max_attempts,
            policy.retry_failed, payload))
        if isinstance(reply, QueueRefused):
            index = reply.index if reply.index is not None else 0
            there = (self.sealer.open(ref, index, reply.envelope) if reply.envelope else None)
            raise QueueConflictError(describe_conflict(ref, items, index, reply.total or 0,
                                                       there))
        if not isinstance(reply, QueueSubmitted):
            raise self._unexpected(reply)
        return SubmitResult(reply.created, reply.total, reply.carried, "fleet")

    async def claim(self, ref: QueueRef, *, holder: str = "", wait: float = 0.0) -> ClaimResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        key = self.sealer.key(ref)
        name = (holder or self.holder)[:256]
        reply = await self._call(ref, lambda rid: QueueClaim(rid, key.queue_id, key.attempt,
                                                             name, min(wait, 60.0)), wait)
        if isinstance(reply, QueueClaimed):
            item = self.sealer.open(ref, reply.index, reply.envelope)
            return Claim(reply.index, item, reply.lease_token, reply.lease_ttl, reply.attempts)
        if isinstance(reply, QueueStatusReply):
            return _status(reply)
        raise self._unexpected(reply)

    async def heartbeat(self, ref: QueueRef, item_id: int, token: str) -> Renewal:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        key = self.sealer.key(ref)
        reply = await self._call(ref, lambda rid: QueueHeartbeat(rid, key.queue_id, key.attempt,
                                                                 item_id, token))
        if not isinstance(reply, QueueAck):
            raise self._unexpected(reply)
        return Renewal(item_id, reply.expires_in)

    async def complete(self, ref: QueueRef, item_id: int, token: str, *,
                       ok: bool = True) -> Completion:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        key = self.sealer.key(ref)
        reply = await self._call(ref, lambda rid: QueueComplete(rid, key.queue_id, key.attempt,
                                                                item_id, token, ok))
        if not isinstance(reply, QueueAck) or reply.outcome == "renewed":
            raise self._unexpected(reply)
        return Completion(item_id, reply.state, reply.outcome)

    async def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        key = self.sealer.key(ref)
        reply = await self._call(ref, lambda rid: QueueStatusQuery(
            rid, key.queue_id, key.attempt, min(wait, 60.0)), wait)
        if not isinstance(reply, QueueStatusReply):
            raise self._unexpected(reply)
        return _status(reply)


def _status(reply: QueueStatusReply) -> QueueStatus:
    counts = QueueCounts(reply.ready, reply.leased, reply.done, reply.failed, reply.carried)
    return QueueStatus(counts, holders_of(reply.holders), "fleet")
