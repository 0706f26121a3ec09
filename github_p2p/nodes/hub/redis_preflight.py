"""One look at Redis before a hub starts on it: a refused password is a configuration error
(exit 2), an unreachable server is not (the hub starts degraded and keeps trying), and an
eviction policy that would evict what must stay is worth a warning."""

from __future__ import annotations

from dataclasses import dataclass, field

import coredis
import trio

from github_p2p.errors import ConfigError
from github_p2p.nodes.hub.redis_client import RedisClient, redis_client
from github_p2p.nodes.hub.redis_settings import RedisSettings

__all__ = ["Preflight", "preflight"]

_REFUSED = (coredis.exceptions.AuthenticationError, coredis.exceptions.AuthorizationError)


@dataclass(frozen=True)
class Preflight:
    """What the look found: ``unreachable`` is the reason when Redis did not answer."""

    unreachable: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


async def preflight(settings: RedisSettings) -> Preflight:
    """Connect, authenticate and ``PING`` once; raises :class:`ConfigError` when Redis refuses
    the credentials."""
    refused: BaseException | None = None
    unreachable: str | None = None
    warnings: list[str] = []
    client = redis_client(settings)
    try:
        async with client:
            # Nothing may escape the body: the pool's task group would wrap it in a group.
            try:
                with trio.fail_after(settings.connect_timeout + settings.op_timeout):
                    await client.ping()
                warnings.extend(await _policy_warnings(client, settings))
            except _REFUSED as exc:
                refused = exc
            except (coredis.exceptions.RedisError, OSError, TimeoutError,
                    trio.TooSlowError) as exc:
                unreachable = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except Exception as exc:  # the pool failed to start (exception group)
        unreachable = f"{type(exc).__name__}: {exc}"
    if refused is not None:
        raise ConfigError(f"Redis at {settings.display} refused the credentials: {refused}")
    return Preflight(unreachable, tuple(warnings))


async def _policy_warnings(client: RedisClient, settings: RedisSettings
                           ) -> list[str]:
    try:
        with trio.fail_after(settings.op_timeout):
            config = await client.config_get(["maxmemory", "maxmemory-policy"])
    except (coredis.exceptions.RedisError, trio.TooSlowError):
        return []  # CONFIG is often refused to application users (ACL): nothing to say
    policy = config.get(b"maxmemory-policy", b"").decode()
    limited = config.get(b"maxmemory", b"0") not in (b"0", b"")
    if policy.startswith("allkeys"):
        return [f"Redis at {settings.display} evicts any key (maxmemory-policy {policy}); "
                "volatile-lru evicts only expiring entries and keeps the hubs' bookkeeping "
                "(docs/bootstrap-node.md)"]
    if limited and policy == "noeviction":
        return [f"Redis at {settings.display} refuses writes when full (maxmemory-policy "
                "noeviction): the hubs would degrade; use volatile-lru "
                "(docs/bootstrap-node.md)"]
    return []
