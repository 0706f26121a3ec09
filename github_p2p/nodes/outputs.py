"""Command outputs shared through a runner's daemon: how the gh wrapper shares ``--json``
commands (``gh pr list --json ...``) across the fleet.

The real gh talks to GitHub itself, so its requests cannot pass through the cache; its *output*
can. The wrapper names a command (a digest of host, argv and repository; the token's fingerprint
too when the answer depends on the caller) and asks the daemon:

* ``POST /_p2p/outputs/claim?name=N&ttl=T[&private=1]``: ``200`` with the output (header
  ``X-GitHub-P2P-Cache: hit-local`` or ``hit-peer``), or ``204``: run gh, with
  ``X-GitHub-P2P-Lease`` when this runner holds the fleet's fill lease (the others wait at the
  hub for its fill, so N runners starting at once run gh once);
* ``POST /_p2p/outputs/fill?name=N&ttl=T[&lease=L][&private=1]`` with the output as the body:
  keep it here and share it sealed, like any cached answer (fills the lease);
* ``POST /_p2p/outputs/release?name=N&lease=L``: gh failed, give the lease back;
* ``POST /_p2p/outputs/forget``: a command may have written: forget every shared output.

Private outputs (a caller-dependent command), and every output when there is no fleet (or no
hub to reach), stay in this daemon. A shared output is kept by the hub only, not in the
runners' local stores: then one ``forget`` at the hub reaches every runner (each claim costs a
round trip to the hub, which a gh command, hundreds of milliseconds itself, does not notice).
Outputs are not GitHub calls this daemon made, so they do not enter its request statistics.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from github_p2p.cache.driver import CACHE_HEADER
from github_p2p.cache.trio_engine import TrioCacheEngine
from github_p2p.core.cachekey import CacheKey
from github_p2p.core.effects import ShareResult
from github_p2p.core.entry import CacheEntry
from github_p2p.core.lease import Lease, LeaseOutcome

__all__ = ["LEASE_HEADER", "MAX_OUTPUT", "CommandOutputs", "output_routes"]

log = logging.getLogger(__name__)

LEASE_HEADER = "X-GitHub-P2P-Lease"
#: Largest command output kept (the fleet's own limit on shared entries may be lower).
MAX_OUTPUT = 8 * 1024 * 1024
_MAX_TTL = 3600.0
_MAX_PENDING = 1024


@dataclass(frozen=True)
class _Pending:
    key: CacheKey
    lease: Lease
    until: float


class CommandOutputs:
    """Keeps and shares command outputs over a daemon's engine (local store and fleet)."""

    def __init__(self, engine: TrioCacheEngine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self._pending: dict[str, _Pending] = {}

    def key(self, name: str, private: bool) -> CacheKey:
        """The cache key of a command output (never shared when ``private``)."""
        settings = self.engine.settings
        base = settings.api_url.lower()
        return CacheKey(text=f"{base}|gh-output|{name}|{settings.scope}",
                        resource=self.tag(), shared=not private)

    def tag(self) -> str:
        """The resource every command output of this scope is tagged with."""
        settings = self.engine.settings
        return f"{settings.api_url.lower()}|{settings.scope}|gh-commands"

    async def _local(self, key: CacheKey, now: float) -> CacheEntry | None:
        entry = self.engine.hot.get(key.local_id, now)
        if entry is None:
            entry = await trio.to_thread.run_sync(self.engine.store.get, key.local_id)
        return entry if entry is not None and entry.is_fresh(now) else None

    async def _keep(self, key: CacheKey, entry: CacheEntry, ttl: float) -> None:
        self.engine.hot.put(key.local_id, entry, keep_until=entry.expires_at, tag=key.resource)
        await trio.to_thread.run_sync(
            lambda: self.engine.store.put(key.local_id, entry, keep_for=ttl, tag=key.resource))

    async def claim(self, name: str, ttl: float, private: bool
                    ) -> tuple[CacheEntry | None, str, str | None]:
        """``(entry, outcome, lease id)``: a fresh output, or the go-ahead to run gh."""
        now = self._clock()
        self._expire(now)
        key = self.key(name, private)
        fleet = self.engine.fleet
        if fleet is None or not key.shared:
            local = await self._local(key, now)
            return (local, "hit-local", None) if local is not None else (None, "miss", None)
        reply = await fleet.ask(key, self.engine.settings.fleet_wait)
        answer = reply.answer
        if answer is None:  # no hub: what this runner kept while it could not share
            local = await self._local(key, now)
            return (local, "hit-local", None) if local is not None else (None, "miss", None)
        offered = answer.payload
        now = self._clock()
        if (answer.outcome in (LeaseOutcome.HIT, LeaseOutcome.FILLED) and answer.fresh
                and offered is not None and offered.status == 200):
            # Capped like any entry from the fleet: the sealed expiry, at most ``ttl`` away.
            entry = CacheEntry(200, (), offered.body, min(offered.fetched_at, now),
                               min(offered.expires_at, now + ttl))
            if entry.is_fresh(now):
                return entry, "hit-peer", None
        if answer.lease is None:
            return None, "miss", None
        ident = secrets.token_urlsafe(16)
        if len(self._pending) < _MAX_PENDING:
            self._pending[ident] = _Pending(key, answer.lease, now + answer.lease.ttl)
            return None, "miss", ident
        await fleet.release(key, answer.lease)
        return None, "miss", None

    async def fill(self, name: str, ttl: float, private: bool, output: bytes,
                   lease_id: str | None) -> bool:
        """Keep ``output`` and share it (filling the lease); whether the fleet took it."""
        now = self._clock()
        key = self.key(name, private)
        pending = self._pending.pop(lease_id, None) if lease_id else None
        entry = CacheEntry(200, (), output, now, now + ttl)
        fleet = self.engine.fleet
        if fleet is None or not key.shared:
            await self._keep(key, entry, ttl)
            return False
        lease = pending.lease if pending is not None and pending.key == key else None
        if len(output) > self.engine.settings.max_shared_entry:
            if lease is not None:
                await fleet.release(key, lease)
            return False
        shared = await fleet.share(key, entry, ttl, ttl, lease)
        if shared is not ShareResult.SHARED:
            await self._keep(key, entry, ttl)
        return shared is ShareResult.SHARED

    async def release(self, lease_id: str) -> None:
        """Give a lease back (the command failed)."""
        pending = self._pending.pop(lease_id, None)
        if pending is not None and self.engine.fleet is not None:
            await self.engine.fleet.release(pending.key, pending.lease)

    async def forget(self) -> bool:
        """Forget every command output here and fleet-wide; ``False`` when the fleet failed."""
        tag = self.tag()
        self.engine.hot.discard_tag(tag)
        await trio.to_thread.run_sync(self.engine.store.invalidate, tag)
        fleet = self.engine.fleet
        return await fleet.invalidate([tag]) if fleet is not None else True

    def _expire(self, now: float) -> None:
        # A wrapper that died between claim and fill: the hub's lease expires on its own.
        for ident in [i for i, p in self._pending.items() if p.until <= now]:
            del self._pending[ident]


def _params(request: Request) -> tuple[str, float, bool] | None:
    name = request.query_params.get("name", "")
    try:
        ttl = float(request.query_params.get("ttl", "60"))
    except ValueError:
        return None
    if not (16 <= len(name) <= 128 and name.isalnum()) or not 0 < ttl <= _MAX_TTL:
        return None
    return name, ttl, request.query_params.get("private") == "1"


def output_routes(outputs: CommandOutputs) -> list[Route]:
    """The ``/_p2p/outputs/*`` routes."""
    bad = JSONResponse({"message": "expected ?name=<hex digest>&ttl=<seconds, at most 3600>"},
                       status_code=400)

    async def claim(request: Request) -> Response:
        params = _params(request)
        if params is None:
            return bad
        entry, outcome, lease = await outputs.claim(*params)
        if entry is not None:
            return Response(entry.body, media_type="application/octet-stream",
                            headers={CACHE_HEADER: outcome})
        headers = {CACHE_HEADER: outcome}
        if lease is not None:
            headers[LEASE_HEADER] = lease
        return Response(status_code=204, headers=headers)

    async def fill(request: Request) -> Response:
        params = _params(request)
        if params is None:
            return bad
        body = await request.body()
        if len(body) > MAX_OUTPUT:
            return JSONResponse({"message": "output too large to keep"}, status_code=413)
        shared = await outputs.fill(*params, body, request.query_params.get("lease"))
        return JSONResponse({"kept": True, "shared": shared})

    async def release(request: Request) -> Response:
        await outputs.release(request.query_params.get("lease", ""))
        return JSONResponse({"released": True})

    async def forget(_: Request) -> Response:
        return JSONResponse({"forgotten": True, "fleet": await outputs.forget()})

    return [
        Route("/_p2p/outputs/claim", claim, methods=["POST"]),
        Route("/_p2p/outputs/fill", fill, methods=["POST"]),
        Route("/_p2p/outputs/release", release, methods=["POST"]),
        Route("/_p2p/outputs/forget", forget, methods=["POST"]),
    ]
