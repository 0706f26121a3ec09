"""The daemon's queue API over HTTP: ``POST /_p2p/queue/<op>`` with a JSON body.

Every request carries the endpoint's control header (``X-GitHub-P2P-Control``, as every
``POST /_p2p/*`` must: a web page cannot send it) and names its queue with ``name``, ``run_id``
(default ``"local"``) and ``attempt`` (default 1):

=============  ==================================================  =====================
operation      body (besides the queue)                            answer
=============  ==================================================  =====================
``submit``     ``items`` [str], ``lease_ttl``, ``max_attempts``,   ``created``, ``total``,
               ``retry_failed`` (optional)                         ``carried``, ``mode``
``claim``      ``holder``, ``wait`` (s, ≤ 60; optional)            ``claimed``: true with
                                                                   ``id``, ``item``,
                                                                   ``token``...; else false
                                                                   with ``status``
``heartbeat``  ``id``, ``token`` (optional: the daemon's own)      ``id``, ``expires_in``
``complete``   ``id``, ``ok``, ``token`` (optional)                ``id``, ``state``,
                                                                   ``outcome``
``status``     ``wait`` (optional)                                 counts, ``holders``...
=============  ==================================================  =====================

Errors answer ``{"error": code, "message": …}``: 400 ``bad_request``, 404 ``not_found``, 409
``conflict`` or ``stale``, 413 ``limit``, 502 ``integrity``, 503 ``fleet_unavailable`` (the
queue's hub is away for now: retry). Clients: :mod:`github_p2p.workqueue.client`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import DEFAULT_RUN_ID, QueueRef
from github_p2p.errors import (
    CacheStoreError,
    ConfigError,
    FleetUnavailableError,
    GitHubP2PError,
    IntegrityError,
    QueueConflictError,
    QueueLimitError,
    QueueNotFoundError,
    StaleLeaseError,
)
from github_p2p.workqueue.api import Claim

if TYPE_CHECKING:
    from github_p2p.workqueue.daemon import DaemonQueues

__all__ = ["MAX_QUEUE_BODY", "queue_routes", "ref_from"]

#: Largest request body the queue API reads (a full list of long items fits).
MAX_QUEUE_BODY: Final = 16 * 1024 * 1024
_MAX_WAIT: Final = 60.0
_ERRORS: Final[tuple[tuple[type[Exception], int, str], ...]] = (
    (QueueConflictError, 409, "conflict"),
    (StaleLeaseError, 409, "stale"),
    (QueueNotFoundError, 404, "not_found"),
    (QueueLimitError, 413, "limit"),
    (ConfigError, 400, "bad_request"),
    (FleetUnavailableError, 503, "fleet_unavailable"),
    (IntegrityError, 502, "integrity"),
    (CacheStoreError, 500, "store"),
)


# --- reading requests -------------------------------------------------------------------------


def _field(doc: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = doc.get(name, default)
    if value is None and default is None:
        raise ConfigError(f"missing {name!r}")
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise ConfigError(f"{name!r} must be a number")
        return float(value)
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        raise ConfigError(f"{name!r} must be of type {kind.__name__}")
    return value


def ref_from(doc: dict[str, Any]) -> QueueRef:
    """The queue a request names."""
    return QueueRef(_field(doc, "name", str), _field(doc, "run_id", str, DEFAULT_RUN_ID),
                    _field(doc, "attempt", int, 1))


def _wait(doc: dict[str, Any]) -> float:
    wait: float = _field(doc, "wait", float, 0.0)
    if not 0 <= wait <= _MAX_WAIT:
        raise ConfigError(f"'wait' must be 0..{_MAX_WAIT:g} seconds")
    return wait


def _token(doc: dict[str, Any]) -> str | None:
    token = doc.get("token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 256):
        raise ConfigError("'token' must be a short string")
    return token


async def _json_body(request: Request) -> dict[str, Any]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_QUEUE_BODY:
            raise QueueLimitError(f"request body larger than {MAX_QUEUE_BODY} bytes")
        chunks.append(chunk)
    try:
        doc = json.loads(b"".join(chunks) or b"{}")
    except (ValueError, RecursionError) as exc:
        raise ConfigError("the body must be a JSON object") from exc
    if not isinstance(doc, dict):
        raise ConfigError("the body must be a JSON object")
    return doc


def _policy(doc: dict[str, Any]) -> QueuePolicy:
    default = QueuePolicy()
    return QueuePolicy(_field(doc, "lease_ttl", float, default.lease_ttl),
                       _field(doc, "max_attempts", int, default.max_attempts),
                       _field(doc, "retry_failed", bool, default.retry_failed))


def queue_routes(queues: DaemonQueues) -> list[BaseRoute]:
    """The ``/_p2p/queue/*`` routes of a runner daemon's endpoint."""

    async def submit(doc: dict[str, Any]) -> dict[str, Any]:
        items = _field(doc, "items", list)
        if not all(isinstance(item, str) for item in items):
            raise ConfigError("'items' must be a list of strings")
        return (await queues.submit(ref_from(doc), items, _policy(doc))).to_json()

    async def claim(doc: dict[str, Any]) -> dict[str, Any]:
        holder = _field(doc, "holder", str, "")
        result = await queues.claim(ref_from(doc), holder=holder[:256], wait=_wait(doc))
        if isinstance(result, Claim):
            return {"claimed": True, **result.to_json()}
        return {"claimed": False, "status": result.to_json()}

    async def heartbeat(doc: dict[str, Any]) -> dict[str, Any]:
        renewal = await queues.heartbeat(ref_from(doc), _field(doc, "id", int), _token(doc))
        return {"id": renewal.id, "expires_in": renewal.expires_in}

    async def complete(doc: dict[str, Any]) -> dict[str, Any]:
        done = await queues.complete(ref_from(doc), _field(doc, "id", int), _token(doc),
                                     ok=_field(doc, "ok", bool, True))
        return {"id": done.id, "state": done.state, "outcome": done.outcome}

    async def status(doc: dict[str, Any]) -> dict[str, Any]:
        return (await queues.status(ref_from(doc), wait=_wait(doc))).to_json()

    def endpoint(operation: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
                 ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                return JSONResponse(await operation(await _json_body(request)))
            except GitHubP2PError as exc:
                for kind, status_code, code in _ERRORS:
                    if isinstance(exc, kind):
                        return JSONResponse({"error": code, "message": str(exc)},
                                            status_code=status_code)
                raise
        return handle

    return [Route(f"/_p2p/queue/{name}", endpoint(operation), methods=["POST"])
            for name, operation in (("submit", submit), ("claim", claim),
                                    ("heartbeat", heartbeat), ("complete", complete),
                                    ("status", status))]
