"""Work queues: matrix legs pull items (test shards) from one queue until it is drained.

The interface is :class:`~github_p2p.workqueue.api.WorkQueue` (submit, claim, heartbeat,
complete, status). This package module imports nothing heavy; the implementations live in
``.local`` (this process), ``.fleet`` (the hub, over libp2p), ``.daemon`` (what a runner daemon
serves) and ``.client`` (a daemon's endpoint over HTTP). The pure state machine is
:mod:`github_p2p.core.queue`; stores are in ``.store`` and ``.sqlite``.
"""

from __future__ import annotations

from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import QueueRef
from github_p2p.workqueue.api import (
    Claim,
    ClaimResult,
    Completion,
    Holder,
    QueueStatus,
    Renewal,
    SubmitResult,
    WorkQueue,
)

__all__ = [
    "Claim",
    "ClaimResult",
    "Completion",
    "Holder",
    "QueuePolicy",
    "QueueRef",
    "QueueStatus",
    "Renewal",
    "SubmitResult",
    "WorkQueue",
]
