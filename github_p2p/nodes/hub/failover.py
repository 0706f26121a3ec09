"""A hub whose shared state (Redis) may go away: it keeps serving from its own memory.

:class:`FailoverHubState` answers from the shared state while it is available, and from a
:class:`~github_p2p.nodes.hub.state.LocalHubState` while it is not: unreachable at start, or an
operation failing mid-run. The switch is loud (an error in the log, ``redis_outages`` counted,
``state_status: degraded`` in the hub's health and stats) and goes back by itself once the
shared state answers and is subscribed again. Runners never see an error for it: a lease that
failed half-way is answered by the fallback with the time it had left.

What the fallback does not know is not lost: deletes (invalidations) made while degraded are
replayed to the shared state before it serves again, so a write during an outage cannot
resurface a stale entry; leases granted by the fallback keep being filled there (a put also goes
to the fallback while it has fills in flight).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import trio

from github_p2p.core.lease import LeaseAnswer
from github_p2p.errors import SharedStateUnavailableError
from github_p2p.nodes.hub.envelopes import StoredEnvelope
from github_p2p.nodes.hub.state import Figure, HubState, LocalHubState

__all__ = ["FailoverHubState", "SharedHubState"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Counters summed over both states; the rest of the figures come from the one answering.
_SUMMED = ("coalesced_waits", "leases_granted", "lease_timeouts", "lease_takeovers", "waiters")
#: Invalidations remembered during an outage, to replay; past this the oldest are dropped.
_MAX_PENDING_DELETES = 100_000


class SharedHubState(HubState, Protocol):
    """A hub state several hubs share, with a background task and a health signal."""

    @property
    def available(self) -> bool:
        """True while operations can be expected to succeed."""

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection; ``started`` after the first attempt, reached or not."""


class FailoverHubState:
    """The shared state while it answers, the local one while it does not."""

    def __init__(self, shared: SharedHubState, fallback: LocalHubState, *, where: str,
                 check_interval: float = 0.25) -> None:
        self.shared = shared
        self.fallback = fallback
        #: Where the shared state lives, for logs (no password).
        self.where = where
        self.check_interval = check_interval
        #: Nothing is shared before :meth:`run` has reached the shared state.
        self.degraded = True
        #: When the current outage began (``None`` while shared, and before the start).
        self.degraded_since: float | None = None
        self.counts = dict.fromkeys(("redis_outages", "redis_recoveries", "fallback_answers",
                                     "deletes_replayed", "deletes_dropped"), 0)
        self._degraded_total = 0.0
        self._pending_deletes: OrderedDict[bytes, None] = OrderedDict()

    @property
    def status(self) -> str:
        """``active`` while the shared state answers, ``degraded`` while the fallback does."""
        return "degraded" if self.degraded else "active"

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Run the shared state and watch it; ``started`` once its first attempt is over."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.shared.run)
            if self.shared.available:
                await self._recover()
            else:
                self._degrade(f"{self.where} is unreachable at start")
            nursery.start_soon(self._watch)
            task_status.started()

    async def _watch(self) -> None:
        while True:
            await trio.sleep(self.check_interval)
            if self.degraded and self.shared.available:
                await self._recover()
            elif not self.degraded and not self.shared.available:
                self._degrade(f"{self.where} stopped answering")

    def _degrade(self, why: str) -> None:
        if self.degraded and self.degraded_since is not None:
            return  # already degraded
        self.degraded = True
        self.degraded_since = time.time()
        self.counts["redis_outages"] += 1
        log.error("DEGRADED: %s. This hub now serves from its own memory: entries, leases and "
                  "rate limits are no longer shared with the other hubs until it is back "
                  "(retrying in the background).", why)

    async def _recover(self) -> None:
        try:
            await self._replay_deletes()
        except SharedStateUnavailableError as exc:
            log.warning("%s answers again but the invalidations made meanwhile could not be "
                        "replayed yet: %s", self.where, exc)
            return
        first = self.counts["redis_outages"] == 0
        self.degraded = False
        if self.degraded_since is not None:
            self._degraded_total += time.time() - self.degraded_since
        self.degraded_since = None
        if first:
            log.info("sharing the hub state in %s", self.where)
        else:
            self.counts["redis_recoveries"] += 1
            log.warning("RECOVERED: %s answers again; this hub shares its state again.",
                        self.where)

    async def _replay_deletes(self) -> None:
        while self._pending_deletes:
            ident = next(iter(self._pending_deletes))
            await self.shared.delete(ident)
            self._pending_deletes.pop(ident, None)
            self.counts["deletes_replayed"] += 1

    async def _first(self, shared: Callable[[], Awaitable[T]],
                     local: Callable[[], Awaitable[T]]) -> T:
        """``shared()`` unless degraded or failing, else ``local()``."""
        if not self.degraded:
            try:
                return await shared()
            except SharedStateUnavailableError as exc:
                self._degrade(str(exc))
        self.counts["fallback_answers"] += 1
        return await local()

    # -- HubState ----------------------------------------------------------------------------

    async def lease(self, entry_id: bytes, holder: str, wait: float
                    ) -> LeaseAnswer[StoredEnvelope]:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        deadline = trio.current_time() + max(0.0, wait)
        return await self._first(
            lambda: self.shared.lease(entry_id, holder, wait),
            lambda: self.fallback.lease(entry_id, holder,
                                        max(0.0, deadline - trio.current_time())))

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        return await self._first(lambda: self.shared.get(entry_id),
                                 lambda: self.fallback.get(entry_id))

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float,
                  keep_ttl: float, tag: bytes | None, lease_token: str | None) -> None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        async def local() -> None:
            await self.fallback.put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                                    tag=tag, lease_token=lease_token)

        async def shared() -> None:
            await self.shared.put(entry_id, envelope, fresh_ttl=fresh_ttl, keep_ttl=keep_ttl,
                                  tag=tag, lease_token=lease_token)
            if self.fallback.board.in_flight:
                await local()  # its waiters (from before the recovery) get their fill

        await self._first(shared, local)

    async def release(self, entry_id: bytes, token: str) -> bool:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        local = await self.fallback.release(entry_id, token)

        async def fallback() -> bool:
            return local

        return await self._first(lambda: self.shared.release(entry_id, token), fallback) or local

    async def release_holder(self, holder: str) -> int:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        local = await self.fallback.release_holder(holder)

        async def fallback() -> int:
            return 0

        return local + await self._first(lambda: self.shared.release_holder(holder), fallback)

    async def delete(self, ident: bytes) -> int:
        """See :class:`~github_p2p.nodes.hub.state.HubState`; while degraded, remembered and
        replayed to the shared state before it serves again."""
        local = await self.fallback.delete(ident)

        async def remember() -> int:
            self._pending_deletes[ident] = None
            self._pending_deletes.move_to_end(ident)
            if len(self._pending_deletes) > _MAX_PENDING_DELETES:
                self._pending_deletes.popitem(last=False)
                self.counts["deletes_dropped"] += 1
            return 0

        return local + await self._first(lambda: self.shared.delete(ident), remember)

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        await self.fallback.note_limit(resource, until)

        async def nothing() -> None:
            return None

        await self._first(lambda: self.shared.note_limit(resource, until), nothing)

    async def limits(self, now: float) -> dict[str, float]:
        """See :class:`~github_p2p.nodes.hub.state.HubState`: ours and, while shared, the
        fleet's."""
        merged = await self.fallback.limits(now)
        if not self.degraded:
            for key, until in (await self.shared.limits(now)).items():
                merged[key] = max(until, merged.get(key, 0.0))
        return merged

    def figures(self) -> dict[str, Figure]:
        """See :class:`~github_p2p.nodes.hub.state.HubState`; adds ``state_status``."""
        shared, local = self.shared.figures(), self.fallback.figures()
        out: dict[str, Figure] = {**shared, **(local if self.degraded else {})}
        for name in _SUMMED:
            out[name] = int(shared.get(name, 0)) + int(local.get(name, 0))
        degraded_for = (time.time() - self.degraded_since
                        if self.degraded and self.degraded_since is not None else 0.0)
        out.update(self.counts, state_backend="redis", state_status=self.status,
                   redis=self.where,
                   redis_degraded_seconds=round(self._degraded_total + degraded_for, 1),
                   deletes_pending=len(self._pending_deletes))
        return out

    def close(self) -> None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        self.shared.close()
        self.fallback.close()
