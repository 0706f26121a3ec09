"""The coredis client of a hub on Redis: how it is made (one server or a cluster), how its
failures are recognised, and the coredis defect worked around (see :class:`CoredisWorkaround`).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Awaitable
from typing import Any

import anyio
import coredis

from github_p2p.nodes.hub.redis_settings import RedisSettings

if sys.version_info < (3, 11):  # pragma: no cover - trio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

__all__ = ["ALL_COREDIS_WORKAROUNDS", "BROKEN", "CoredisWorkaround", "RedisClient", "reason",
           "redis_client", "routed", "scan_keys", "without"]

RedisClient = coredis.Redis[bytes] | coredis.RedisCluster[bytes]

#: How coredis reports a connection it could not use: its own errors, the OS's, and anyio's
#: when the connection closed under a command (a stopping pool).
BROKEN = (coredis.exceptions.RedisError, OSError, TimeoutError, anyio.ClosedResourceError,
          anyio.BrokenResourceError)


class CoredisWorkaround(enum.Enum):
    """A coredis 6.9 defect :class:`RedisHubState` works around; on by default, switchable for
    the regression test that shows it."""

    #: Cancelling a pub/sub context while the client's pool closes (a hub stopping) often
    #: raises ``anyio.ClosedResourceError`` from the UNSUBSCRIBE of its clean-up, instead of
    #: ending quietly: the stop would crash. The subscriber swallows that one error.
    PUBSUB_CANCEL = "pubsub-cancel"


ALL_COREDIS_WORKAROUNDS: frozenset[CoredisWorkaround] = frozenset(CoredisWorkaround)


def redis_client(settings: RedisSettings) -> RedisClient:
    """A coredis client for ``settings``: one server, or a cluster."""
    if settings.cluster:
        return coredis.RedisCluster(**settings.client_options())
    return coredis.Redis(**settings.client_options())


def routed(request: Any, cluster: bool, key: str) -> Any:
    """On a cluster, send a keyless command to the node serving the fleet's slot."""
    return request.route(key) if cluster else request


def scan_keys(client: RedisClient, *, cursor: int, match: str, cluster: bool, route: str
              ) -> Awaitable[tuple[int, tuple[bytes, ...]]]:
    """One SCAN step over the keys matching ``match`` (on a cluster, the fleet's node)."""
    request: Awaitable[tuple[int, tuple[bytes, ...]]] = routed(
        client.scan(cursor, match=match, count=1000), cluster, route)
    return request


def without(exc: BaseException, kinds: tuple[type[BaseException], ...]
            ) -> BaseException | None:
    """``exc`` without its leaves of ``kinds`` (``None`` when nothing else is left)."""
    if not kinds:
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(kinds)[1]
    return None if isinstance(exc, kinds) else exc


def reason(exc: BaseException) -> str:
    """A one-line reason, looking inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
