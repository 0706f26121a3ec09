"""The queues a runner daemon serves on ``/_p2p/queue``: at the hub, or here without a fleet.

With a fleet, queues live at the hub (:class:`~.fleet.FleetWorkQueue`). Without one (no secret
or no bootstrap peers) the daemon runs them itself (:class:`~.local.LocalWorkQueue`) and says
so: ``queue run`` then works through the whole list on this runner. If a fleet is configured
but the queue's hub cannot be reached when the list is submitted, the queue falls back to this
runner too, loudly: every item still runs (perhaps on several runners) rather than none.

The daemon remembers the lease tokens of the items it handed out, so ``queue done NAME ID``
needs no token; callers that hold one (the MCP tools) may pass it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import trio

from github_p2p.core.keys import FleetKeys
from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import FleetSealer, PlainSealer, QueueRef, QueueSealer
from github_p2p.errors import FleetUnavailableError, StaleLeaseError
from github_p2p.p2p.link import HubLink
from github_p2p.workqueue.api import (
    Claim,
    ClaimResult,
    Completion,
    QueueMode,
    QueueStatus,
    Renewal,
    SubmitResult,
    WorkQueue,
)
from github_p2p.workqueue.fleet import FleetWorkQueue
from github_p2p.workqueue.local import LocalWorkQueue

__all__ = ["LOCAL_STORE_FILE", "DaemonQueues", "build_daemon_queues"]

_MAX_TOKENS = 100_000
#: The daemon's own queue store in its cache directory (queues it runs without the fleet).
LOCAL_STORE_FILE = "queues.sqlite3"

log = logging.getLogger(__name__)

_NO_FLEET = ("no fleet (local-only): this runner works through the whole queue {ref} alone")
_FALLBACK = ("the fleet's hub is unreachable: this runner works through the whole queue {ref} "
             "alone (items may also run on other runners)")


class DaemonQueues:
    """Fleet or local per queue, with the lease tokens this daemon handed out."""

    def __init__(self, local: LocalWorkQueue, fleet: FleetWorkQueue | None = None, *,
                 holder: str = "runner", fallback_after: float = 30.0) -> None:
        self.local = local
        self.fleet = fleet
        self.holder = holder
        #: How long a submission keeps trying the hub before the queue falls back here.
        self.fallback_after = fallback_after
        self._modes: dict[QueueRef, QueueMode] = {}
        self._tokens: dict[tuple[QueueRef, int], str] = {}

    def mode(self, ref: QueueRef) -> QueueMode:
        """Where ``ref`` runs."""
        return self._modes.get(ref, "fleet" if self.fleet is not None else "local")

    def _backend(self, ref: QueueRef) -> WorkQueue:
        if self.fleet is not None and self.mode(ref) == "fleet":
            return self.fleet
        return self.local

    async def submit(self, ref: QueueRef, items: Sequence[str],
                     policy: QueuePolicy | None = None) -> SubmitResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        if self.fleet is None:
            result = await self.local.submit(ref, items, policy)
            return replace(result, mode="local", notice=_NO_FLEET.format(ref=ref))
        if self._modes.get(ref) != "local":
            with trio.move_on_after(self.fallback_after):
                while True:
                    try:
                        result = await self.fleet.submit(ref, items, policy)
                    except FleetUnavailableError as exc:
                        log.warning("queue %s: %s; retrying", ref, exc)
                        await trio.sleep(1.0)
                        continue
                    self._modes[ref] = "fleet"
                    return result
        notice = _FALLBACK.format(ref=ref)
        log.warning("%s", notice)
        self._modes[ref] = "local"
        result = await self.local.submit(ref, items, policy)
        return replace(result, mode="local", notice=notice)

    async def claim(self, ref: QueueRef, *, holder: str = "", wait: float = 0.0) -> ClaimResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        result = await self._backend(ref).claim(ref, holder=holder or self.holder, wait=wait)
        if isinstance(result, Claim):
            # Kept after completion too, so that a repeated `queue done` is the no-op it
            # should be; bounded, oldest first out.
            self._tokens.pop((ref, result.id), None)
            self._tokens[(ref, result.id)] = result.token
            while len(self._tokens) > _MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
            return replace(result, mode=self.mode(ref))
        return replace(result, mode=self.mode(ref))

    def _token(self, ref: QueueRef, item_id: int, token: str | None) -> str:
        if token:
            return token
        known = self._tokens.get((ref, item_id))
        if known is None:
            raise StaleLeaseError(f"queue {ref}: item {item_id} was not claimed through this "
                                  "daemon; pass its lease token")
        return known

    async def heartbeat(self, ref: QueueRef, item_id: int, token: str | None = None) -> Renewal:
        """See :class:`~github_p2p.workqueue.api.WorkQueue` (``token`` optional here)."""
        return await self._backend(ref).heartbeat(ref, item_id, self._token(ref, item_id, token))

    async def complete(self, ref: QueueRef, item_id: int, token: str | None = None, *,
                       ok: bool = True) -> Completion:
        """See :class:`~github_p2p.workqueue.api.WorkQueue` (``token`` optional here)."""
        lease = self._token(ref, item_id, token)
        return await self._backend(ref).complete(ref, item_id, lease, ok=ok)

    async def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        return replace(await self._backend(ref).status(ref, wait=wait), mode=self.mode(ref))

    def close(self) -> None:
        """Close the local store."""
        self.local.close()


def build_daemon_queues(state_dir: Path, keys: FleetKeys | None, scope: str,
                        links: Callable[[], Sequence[HubLink]], *, holder: str,
                        request_timeout: float) -> DaemonQueues:
    """The queues of a runner daemon: at the hub when it has fleet ``keys`` (else local),
    with local queues in ``state_dir/queues.sqlite3``."""
    sealer: QueueSealer = FleetSealer(keys) if keys is not None else PlainSealer(scope)
    local = LocalWorkQueue.open(state_dir / LOCAL_STORE_FILE, sealer=sealer)
    fleet = (FleetWorkQueue(links, sealer, holder=holder, request_timeout=request_timeout)
             if keys is not None else None)
    return DaemonQueues(local, fleet, holder=holder)
