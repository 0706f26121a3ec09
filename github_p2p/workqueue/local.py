"""A work queue this process runs itself: the board over a local store, no fleet.

A runner daemon without a fleet (no secret or no bootstrap peers) serves its queues this way,
so ``queue run`` works through the whole list on the one runner. The MCP server can use it
in-process too.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from github_p2p.core.queue import QueueLimits, QueuePolicy
from github_p2p.core.queueseal import PlainSealer, QueueRef, QueueSealer, check_item
from github_p2p.errors import QueueConflictError, QueueNotFoundError
from github_p2p.workqueue.api import (
    Claim,
    ClaimResult,
    Completion,
    QueueMode,
    QueueStatus,
    Renewal,
    SubmitResult,
    describe_conflict,
    holders_of,
)
from github_p2p.workqueue.board import Claimed, ListConflict, QueueBoard, Snapshot
from github_p2p.workqueue.sqlite import SQLiteQueueStore
from github_p2p.workqueue.store import MemoryQueueStore, QueueStore

__all__ = ["LocalWorkQueue"]

_T = TypeVar("_T")


async def _named(ref: QueueRef, operation: Awaitable[_T]) -> _T:
    """Await ``operation``, naming ``ref`` in a not-found error."""
    try:
        return await operation
    except QueueNotFoundError as exc:
        raise QueueNotFoundError(f"queue {ref}: {exc}") from exc


class LocalWorkQueue:
    """A :class:`~github_p2p.workqueue.api.WorkQueue` run by this process."""

    def __init__(self, board: QueueBoard, sealer: QueueSealer | None = None, *,
                 owner: str = "local", mode: QueueMode = "local") -> None:
        self.board = board
        self.sealer: QueueSealer = sealer or PlainSealer()
        self.owner = owner
        self.mode: QueueMode = mode

    @classmethod
    def open(cls, path: Path | None, *, sealer: QueueSealer | None = None,
             limits: QueueLimits | None = None) -> LocalWorkQueue:
        """Queues in the SQLite file ``path`` (durable), or in memory when ``path`` is None."""
        store: QueueStore = SQLiteQueueStore(path) if path is not None else MemoryQueueStore()
        return cls(QueueBoard(store, limits=limits, clock=time.time), sealer)

    def close(self) -> None:
        """Close the store."""
        self.board.store.close()

    async def submit(self, ref: QueueRef, items: Sequence[str],
                     policy: QueuePolicy | None = None) -> SubmitResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        items = [check_item(item, self.board.limits) for item in items]
        sealer = self.sealer
        sealed = [(sealer.digest(ref, item), sealer.seal(ref, index, item))
                  for index, item in enumerate(items)]
        try:
            done = await self.board.submit(sealer.key(ref), sealed, policy or QueuePolicy(),
                                           self.owner)
        except ListConflict as exc:
            there = sealer.open(ref, exc.index, exc.envelope) if exc.envelope else None
            raise QueueConflictError(describe_conflict(ref, items, exc.index, exc.total,
                                                       there)) from exc
        return SubmitResult(done.created, done.total, done.carried, self.mode)

    def _status(self, snapshot: Snapshot) -> QueueStatus:
        return QueueStatus(snapshot.counts, holders_of(snapshot.holders), self.mode)

    async def claim(self, ref: QueueRef, *, holder: str = "", wait: float = 0.0) -> ClaimResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        result = await _named(ref, self.board.claim(self.sealer.key(ref),
                                                         holder or "local", wait))
        if isinstance(result, Claimed):
            item = result.item
            assert item.token is not None
            return Claim(item.index, self.sealer.open(ref, item.index, item.envelope),
                         item.token, result.lease_ttl, item.attempts, self.mode)
        return self._status(result)

    async def heartbeat(self, ref: QueueRef, item_id: int, token: str) -> Renewal:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        item = await _named(ref, self.board.heartbeat(self.sealer.key(ref), item_id, token))
        return Renewal(item_id, round(max(0.0, item.expires_at - self.board.now()), 3))

    async def complete(self, ref: QueueRef, item_id: int, token: str, *,
                       ok: bool = True) -> Completion:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        item, outcome = await _named(ref, self.board.complete(self.sealer.key(ref),
                                                                   item_id, token, ok))
        return Completion(item_id, item.state, outcome)

    async def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        return self._status(await _named(ref, self.board.status(self.sealer.key(ref),
                                                                      wait)))

    def board_now(self) -> float:
        """The board's clock."""
        return self.board.now()
