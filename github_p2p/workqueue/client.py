"""Clients of a daemon's queue API (``/_p2p/queue``, see :mod:`.routes`).

:class:`QueueClient` is synchronous (the ``queue`` commands); :class:`EndpointWorkQueue` is a
:class:`~github_p2p.workqueue.api.WorkQueue` for async code under trio or asyncio.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import QueueRef
from github_p2p.errors import GitHubP2PError, QueueError
from github_p2p.workqueue.api import (
    ERROR_CODES,
    Claim,
    ClaimResult,
    Completion,
    QueueStatus,
    Renewal,
    SubmitResult,
)

__all__ = ["EndpointWorkQueue", "QueueClient"]

_T = TypeVar("_T")


class QueueClient:
    """The daemon's queue API from synchronous code (the ``queue`` commands)."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0,
                 session: requests.Session | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._session = session or requests.Session()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _post(self, op: str, ref: QueueRef, body: dict[str, Any], wait: float = 0.0
              ) -> dict[str, Any]:
        doc = {"name": ref.name, "run_id": ref.run_id, "attempt": ref.attempt, **body}
        url = f"{self.endpoint}/_p2p/queue/{op}"
        try:
            # The control header: what tells the endpoint a tool, not a web page, is asking.
            response = self._session.post(url, json=doc, headers={CONTROL_HEADER: "1"},
                                          timeout=wait + self.timeout)
        except requests.RequestException as exc:
            raise GitHubP2PError(f"no github-p2p daemon answers at {self.endpoint} "
                                 f"({type(exc).__name__})") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise GitHubP2PError(f"{url} answered {response.status_code} without JSON "
                                 "(is GITHUB_P2P_ENDPOINT a github-p2p daemon?)")
        if response.status_code != 200:
            error = ERROR_CODES.get(str(answer.get("error")), QueueError)
            raise error(str(answer.get("message") or f"HTTP {response.status_code}"))
        return answer

    def submit(self, ref: QueueRef, items: Sequence[str],
               policy: QueuePolicy | None = None) -> SubmitResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        policy = policy or QueuePolicy()
        doc = self._post("submit", ref, {"items": list(items), "lease_ttl": policy.lease_ttl,
                                         "max_attempts": policy.max_attempts,
                                         "retry_failed": policy.retry_failed})
        return SubmitResult(bool(doc["created"]), int(doc["total"]), int(doc["carried"]),
                            "local" if doc.get("mode") == "local" else "fleet",
                            doc.get("notice"))

    def claim(self, ref: QueueRef, *, holder: str = "", wait: float = 0.0) -> ClaimResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        doc = self._post("claim", ref, {"holder": holder, "wait": wait}, wait)
        if doc.get("claimed"):
            return Claim(int(doc["id"]), str(doc["item"]), str(doc["token"]),
                         float(doc["lease_ttl"]), int(doc.get("attempt", 1)),
                         "local" if doc.get("mode") == "local" else "fleet")
        return QueueStatus.from_json(doc["status"])

    def heartbeat(self, ref: QueueRef, item_id: int, token: str | None = None) -> Renewal:
        """See :class:`~github_p2p.workqueue.api.WorkQueue` (``token`` optional)."""
        body: dict[str, Any] = {"id": item_id, **({"token": token} if token else {})}
        doc = self._post("heartbeat", ref, body)
        return Renewal(int(doc["id"]), float(doc["expires_in"]))

    def complete(self, ref: QueueRef, item_id: int, token: str | None = None, *,
                 ok: bool = True) -> Completion:
        """See :class:`~github_p2p.workqueue.api.WorkQueue` (``token`` optional)."""
        body: dict[str, Any] = {"id": item_id, "ok": ok, **({"token": token} if token else {})}
        doc = self._post("complete", ref, body)
        return Completion(int(doc["id"]), doc["state"], doc["outcome"])

    def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        return QueueStatus.from_json(self._post("status", ref, {"wait": wait}, wait))


class EndpointWorkQueue:
    """A :class:`~github_p2p.workqueue.api.WorkQueue` at a daemon's endpoint, from async code
    under trio or asyncio (each call runs the HTTP exchange in a worker thread)."""

    def __init__(self, endpoint: str, *, timeout: float = 30.0) -> None:
        self.client = QueueClient(endpoint, timeout=timeout)

    @staticmethod
    async def _thread(call: Callable[[], _T]) -> _T:
        import anyio.to_thread  # here, not at import: the queue commands never need it

        return await anyio.to_thread.run_sync(call)

    async def submit(self, ref: QueueRef, items: Sequence[str],
                     policy: QueuePolicy | None = None) -> SubmitResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        return await self._thread(functools.partial(self.client.submit, ref, list(items),
                                                    policy))

    async def claim(self, ref: QueueRef, *, holder: str = "", wait: float = 0.0) -> ClaimResult:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        call = functools.partial(self.client.claim, ref, holder=holder, wait=wait)
        return await self._thread(call)

    async def heartbeat(self, ref: QueueRef, item_id: int, token: str) -> Renewal:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        return await self._thread(functools.partial(self.client.heartbeat, ref, item_id,
                                                    token))

    async def complete(self, ref: QueueRef, item_id: int, token: str, *,
                       ok: bool = True) -> Completion:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        call = functools.partial(self.client.complete, ref, item_id, token, ok=ok)
        return await self._thread(call)

    async def status(self, ref: QueueRef, *, wait: float = 0.0) -> QueueStatus:
        """See :class:`~github_p2p.workqueue.api.WorkQueue`."""
        call = functools.partial(self.client.status, ref, wait=wait)
        return await self._thread(call)
