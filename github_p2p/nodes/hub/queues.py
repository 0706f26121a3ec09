"""The hub's work queues: answers the queue requests of ``/github-p2p/cache/1.0.0``.

Queues are kept in SQLite in the hub's state directory (``queues.sqlite3``), so a restarted hub
carries on with every queue, lease and result where it was. The hub sees queue ids, item
digests, sealed items, states and times, never an item's text. Leases are bound to the
connection that took (or last renewed) them: when a runner's connection drops, its items go
back to the queue at once. A hub that is shutting down keeps its leases, since the runners
are still at work and will renew them once they have reconnected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import trio

from github_p2p.core.queue import QueueKey, QueueLimits, QueuePolicy
from github_p2p.errors import (
    CacheStoreError,
    ConfigError,
    QueueLimitError,
    QueueNotFoundError,
    StaleLeaseError,
)
from github_p2p.p2p.messages import Error, Response
from github_p2p.p2p.queue_messages import (
    QueueAck,
    QueueClaim,
    QueueClaimed,
    QueueComplete,
    QueueHeartbeat,
    QueueRefused,
    QueueRequest,
    QueueStatusQuery,
    QueueStatusReply,
    QueueSubmitted,
)
from github_p2p.workqueue.board import Claimed, ListConflict, QueueBoard, Snapshot
from github_p2p.workqueue.sqlite import SQLiteQueueStore
from github_p2p.workqueue.store import QueueStore

__all__ = ["QUEUE_STORE_FILE", "HubQueues"]

log = logging.getLogger(__name__)

#: The queue store's file name in the hub's state directory.
QUEUE_STORE_FILE = "queues.sqlite3"


def _status(rid: int, snapshot: Snapshot) -> QueueStatusReply:
    c = snapshot.counts
    return QueueStatusReply(rid, c.ready, c.leased, c.done, c.failed, c.carried,
                            snapshot.holders)


class HubQueues:
    """Queue requests in, replies out, over a :class:`~github_p2p.workqueue.board.QueueBoard`."""

    def __init__(self, state_dir: Path, *, shutting_down: Callable[[], bool] = lambda: False,
                 limits: QueueLimits | None = None, store: QueueStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store: QueueStore = store or SQLiteQueueStore(state_dir / QUEUE_STORE_FILE)
        self.board = QueueBoard(self.store, limits=limits, clock=clock)
        self._shutting_down = shutting_down
        self._closed = False

    def stats(self) -> dict[str, int]:
        """Queue counters for the hub's status (``queue_*``)."""
        s = self.board.stats
        return {"queue_submissions": s.submissions, "queues_created": s.queues_created,
                "queue_conflicts": s.conflicts, "queue_claims": s.claims,
                "queue_completions": s.completions, "queue_lapses": s.lapses,
                "queue_releases": s.releases, "queue_refusals": s.refusals,
                "queue_leases_bound": self.board.bound_leases}

    async def answer(self, msg: QueueRequest, holder: str, peer_id: str) -> Response:
        """The reply to one queue request; ``holder`` names the connection it came over,
        ``peer_id`` the runner (queues per peer are bounded)."""
        key = QueueKey(msg.queue_id, msg.attempt)
        board = self.board
        try:
            if isinstance(msg, QueueClaim):
                result = await board.claim(key, msg.holder, msg.wait, holder)
                if isinstance(result, Claimed):
                    item = result.item
                    assert item.token is not None
                    return QueueClaimed(msg.rid, item.index, item.token, result.lease_ttl,
                                        item.attempts, item.envelope)
                return _status(msg.rid, result)
            if isinstance(msg, QueueHeartbeat):
                item = await board.heartbeat(key, msg.index, msg.lease_token, holder)
                return QueueAck(msg.rid, msg.index, item.state, "renewed",
                                round(max(0.0, item.expires_at - board.now()), 3))
            if isinstance(msg, QueueComplete):
                item, outcome = await board.complete(key, msg.index, msg.lease_token, msg.ok,
                                                     holder)
                return QueueAck(msg.rid, msg.index, item.state, outcome)
            if isinstance(msg, QueueStatusQuery):
                return _status(msg.rid, await board.status(key, msg.wait))
            policy = QueuePolicy(msg.lease_ttl, msg.max_attempts, msg.retry_failed)
            done = await board.submit(key, msg.items(), policy, peer_id)
            return QueueSubmitted(msg.rid, done.created, done.total, done.carried)
        except ListConflict as exc:
            return QueueRefused(msg.rid, "conflict", str(exc), exc.index, exc.total,
                                exc.envelope)
        except QueueNotFoundError as exc:
            return QueueRefused(msg.rid, "not_found", str(exc))
        except StaleLeaseError as exc:
            return QueueRefused(msg.rid, "stale", str(exc))
        except QueueLimitError as exc:
            return QueueRefused(msg.rid, "limit", str(exc))
        except ConfigError as exc:  # the wire checks should have caught it already
            return Error(msg.rid, "bad_message", str(exc)[:1024])
        except CacheStoreError as exc:
            log.error("queue store failure: %s", exc)
            return Error(msg.rid, "internal", "the hub's queue store failed")

    async def release_holder(self, holder: str) -> int:
        """The connection ``holder`` dropped: its leases go back to their queues now.

        Not while the hub shuts down: the runners are still working and will renew.
        """
        if self._closed or self._shutting_down():
            return 0
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            try:
                released = await self.board.release_binding(holder)
            except CacheStoreError as exc:
                log.warning("could not hand back the leases of %s: %s", holder, exc)
                return 0
            if released:
                log.info("connection %s dropped; %d queue item(s) back in their queues",
                         holder, released)
            return released
        return 0

    def close(self) -> None:
        """Close the store (leases stay as they are for the next start)."""
        self._closed = True
        self.store.close()
