"""The hubs' shared state in Redis: a :class:`~github_p2p.nodes.hub.state.HubState` that any
number of hubs use at once, so a runner may ask any of them.

Redis holds what a hub would hold (sealed envelopes by HMAC id, tags, fill leases, rate-limit
notes) and nothing more: it sees ids and ciphertext, never a URL or a key. Each step that must be
atomic is one Lua script (:mod:`.redis_scripts`). A waiter learns of a fill through pub/sub: the
hub keeps one subscription and fans it out to its waiters, and a waiter registers for its id
*before* the script that checks the store runs, so a fill announced after the check always
wakes it (NOTES.md). While the subscription is down nobody waits here: the caller gets
:class:`SharedStateUnavailableError` and the hub falls back (:mod:`.failover`).

The client is coredis (trio-native through anyio); every command has a deadline, and any
failure is raised as :class:`SharedStateUnavailableError`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

import anyio
import trio
from coredis.retry import NoRetryPolicy

from github_p2p.cache.gate import RateGate
from github_p2p.core.lease import Lease, LeaseAnswer, LeaseOutcome
from github_p2p.errors import SharedStateUnavailableError
from github_p2p.nodes.hub import redis_scripts
from github_p2p.nodes.hub.envelopes import StoredEnvelope
from github_p2p.nodes.hub.leases import LeaseStats
from github_p2p.nodes.hub.redis_client import (
    ALL_COREDIS_WORKAROUNDS,
    BROKEN,
    CoredisWorkaround,
    RedisClient,
    reason,
    redis_client,
    routed,
    scan_keys,
    without,
)
from github_p2p.nodes.hub.redis_fills import FillNotifier
from github_p2p.nodes.hub.redis_settings import RedisKeys, RedisSettings, fleet_namespace

__all__ = ["RedisHubState"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Figure = int | float | str
#: Rate-limit notes live at most this long (the gate believes no limit further away).
_LIMITS_TTL_MS = 16 * 60 * 1000


class RedisHubState:
    """Envelopes, tags, fill leases and rate limits of a fleet, in Redis, shared by hubs.

    :meth:`run` must be running (it holds the client, the subscription and the heartbeat);
    operations raise :class:`SharedStateUnavailableError` when Redis cannot answer.
    """

    def __init__(self, settings: RedisSettings, network_key: bytes, *, lease_ttl: float = 30.0,
                 instance: str | None = None, wall_clock: Callable[[], float] = time.time,
                 workarounds: frozenset[CoredisWorkaround] = ALL_COREDIS_WORKAROUNDS) -> None:
        self.settings = settings
        self.workarounds = workarounds
        self.keys = RedisKeys(fleet_namespace(network_key))
        #: This hub process; its runners' holder names start with it.
        self.instance = instance or secrets.token_hex(8)
        self.lease_ttl = lease_ttl
        self.stats = LeaseStats()
        self.gate = RateGate()
        self.errors = 0
        self.leases_reaped = 0
        self._wall_clock = wall_clock
        self._notifier = FillNotifier()
        self._client: RedisClient | None = None
        self._scripts: dict[str, Any] = {}
        self._subscribed = False
        self._healthy = False
        self._waiting = 0
        self._first_try = trio.Event()
        self._shared: dict[str, Figure] = {"total_entries": 0, "fills_in_flight": 0,
                                           "bytes_stored": 0, "shared_hubs": 0}

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> RedisClient | None:
        """The running client (``None`` outside :meth:`run`), shared with the queue store."""
        return self._client

    @property
    def available(self) -> bool:
        """True while commands succeed and fills are being announced to this hub."""
        return self._client is not None and self._subscribed and self._healthy

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the connection, the subscription, the heartbeat and the figures until
        cancelled; ``started`` after the first attempt to reach Redis, reached or not."""
        client = redis_client(self.settings)
        async with client:
            self._client = client
            self._scripts = {name: client.register_script(getattr(redis_scripts, name))
                             for name in ("GET", "LEASE", "PUT", "RELEASE", "RELEASE_HOLDER",
                                          "BEAT", "NOTE_LIMIT")}
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._subscribe_forever)
                    with trio.move_on_after(self.settings.connect_timeout
                                            + self.settings.op_timeout):
                        await self._first_try.wait()
                    await self.probe()
                    nursery.start_soon(self._beat_forever)
                    nursery.start_soon(self._figures_forever)
                    task_status.started()
            finally:
                self._client = None
                self._subscribed = False
                self._notifier.notify_all()
                # Lapse at once: the next heartbeat of any hub hands on what our runners still
                # hold, as it would for a hub that died.
                with trio.CancelScope(shield=True), trio.move_on_after(1), suppress(*BROKEN):
                    await client.hset(self.keys.hubs, {self.instance: 0})

    async def probe(self) -> bool:
        """Ask Redis whether it answers; True when this state is :attr:`available`."""
        try:
            await self._call("ping", lambda c: c.ping())
        except SharedStateUnavailableError:
            return False
        return self.available

    def close(self) -> None:
        """Nothing to do: :meth:`run` closes the connection when it is cancelled."""

    # -- HubState ----------------------------------------------------------------------------

    async def lease(self, entry_id: bytes, holder: str, wait: float
                    ) -> LeaseAnswer[StoredEnvelope]:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        deadline = trio.current_time() + max(0.0, wait)
        name = self._holder(holder)
        hexid = entry_id.hex()
        waited = False
        while True:
            if not self._subscribed:
                raise SharedStateUnavailableError("not subscribed to fill announcements")
            with self._notifier.watch(entry_id) as announced:
                token = secrets.token_hex(16)
                reply = await self._run(
                    "LEASE", [self.keys.entry(entry_id), self.keys.lease(entry_id),
                              self.keys.holder(name), self.keys.hub_holders(self.instance)],
                    [self.keys.prefix, self._now_ms(), token, name, _ms(self.lease_ttl), hexid,
                     self._holders_ttl_ms()])
                outcome, stored, pttl = reply[0], _stored(reply[1:5]), int(reply[5])
                if outcome == b"hit":
                    if waited:
                        self.stats.filled += 1
                    return LeaseAnswer(LeaseOutcome.FILLED if waited else LeaseOutcome.HIT,
                                       stored, True)
                if outcome == b"granted":
                    self.stats.granted += 1
                    if waited:
                        self.stats.takeovers += 1
                    return LeaseAnswer(LeaseOutcome.GRANTED, stored, False,
                                       Lease(token, self.lease_ttl))
                now = trio.current_time()
                if now >= deadline:
                    self.stats.timeouts += 1
                    return LeaseAnswer(LeaseOutcome.TIMEOUT, stored, False)
                waited = True
                self._waiting += 1
                try:
                    # Fills and releases are announced; a lease that lapses is not: look again
                    # when it lapses.
                    with trio.move_on_at(min(deadline, now + max(pttl, 1) / 1000)):
                        await announced.wait()
                finally:
                    self._waiting -= 1

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        reply = await self._run("GET", [self.keys.entry(entry_id)], [self.keys.prefix])
        return _stored(reply) if reply else None

    async def put(self, entry_id: bytes, envelope: bytes, *, fresh_ttl: float,
                  keep_ttl: float, tag: bytes | None, lease_token: str | None) -> None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        now = self._wall_clock()
        entry_key = self.keys.entry(entry_id)
        await self._run(
            "PUT", [entry_key, self.keys.lease(entry_id), self.keys.tag(tag) if tag else entry_key],
            [self.keys.prefix, envelope, _ms(now + fresh_ttl), _ms(now),
             max(1, _ms(max(keep_ttl, fresh_ttl))), tag.hex() if tag else "",
             secrets.token_hex(8), lease_token or "", entry_id.hex(), self.keys.channel])

    async def release(self, entry_id: bytes, token: str) -> bool:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        released = await self._run("RELEASE", [self.keys.lease(entry_id)],
                                   [self.keys.prefix, token, entry_id.hex(), self.keys.channel])
        return bool(released)

    async def release_holder(self, holder: str) -> int:
        """See :class:`~github_p2p.nodes.hub.state.HubState`."""
        name = self._holder(holder)
        released = await self._run(
            "RELEASE_HOLDER", [self.keys.holder(name), self.keys.hub_holders(self.instance)],
            [self.keys.prefix, name, self.keys.channel])
        return int(released)

    async def delete(self, ident: bytes) -> int:
        """See :class:`~github_p2p.nodes.hub.state.HubState`; a tag's entries go at once with
        its generation, so the count is of keys (the entry, the tag), not of variants."""
        return await self._call("delete", lambda c: c.delete(
            [self.keys.entry(ident), self.keys.tag(ident)]))

    async def note_limit(self, resource: str, until: float) -> None:
        """See :class:`~github_p2p.nodes.hub.state.HubState`; every hub hears of it."""
        now = self._wall_clock()
        self.gate.note(resource, until, now)
        until = self.gate.until([resource], now) or until
        await self._run("NOTE_LIMIT", [self.keys.limits],
                        [self.keys.prefix, resource, repr(until), self.keys.channel,
                         _LIMITS_TTL_MS])

    async def limits(self, now: float) -> dict[str, float]:
        """See :class:`~github_p2p.nodes.hub.state.HubState` (kept current by pub/sub)."""
        return self.gate.live(now)

    def figures(self) -> dict[str, Figure]:
        """See :class:`~github_p2p.nodes.hub.state.HubState`. ``total_entries``,
        ``fills_in_flight`` and ``bytes_stored`` (Redis's used memory) are the fleet's, as of
        the last count."""
        stats = self.stats
        return {
            "coalesced_waits": stats.filled,
            "leases_granted": stats.granted,
            "lease_timeouts": stats.timeouts,
            "lease_takeovers": stats.takeovers,
            "waiters": self._waiting,
            "leases_reaped": self.leases_reaped,
            "redis_errors": self.errors,
            "redis_namespace": self.keys.namespace,
            **self._shared,
        }

    # -- background --------------------------------------------------------------------------

    async def _subscribe_forever(self) -> None:
        quiet = ((anyio.ClosedResourceError,)
                 if CoredisWorkaround.PUBSUB_CANCEL in self.workarounds else ())
        backoff = 0.1
        while True:
            client = self._client
            assert client is not None
            try:
                async with client.pubsub(retry_policy=NoRetryPolicy(),
                                         ignore_subscribe_messages=True,
                                         max_idle_seconds=5) as pubsub:
                    await pubsub.subscribe(self.keys.channel)  # returns once acknowledged
                    await self._sync_limits()
                    self._subscribed = True
                    self._notifier.notify_all()  # whatever was announced while we were away
                    self._first_try.set()
                    backoff = 0.1
                    log.info("subscribed to %s at %s", self.keys.channel, self.settings.display)
                    async for message in pubsub:
                        self._on_message(message["data"])
            except BaseException as exc:  # coredis raises exception groups
                rest = without(exc, quiet)  # see CoredisWorkaround.PUBSUB_CANCEL
                if rest is exc and not isinstance(exc, Exception):
                    raise  # cancelled
                if rest is not None and not isinstance(rest, Exception):
                    raise rest from None
                if rest is not None and self._subscribed:
                    log.warning("lost the Redis subscription at %s: %s", self.settings.display,
                                reason(rest))
            finally:
                self._subscribed = False
                self._notifier.notify_all()
            self._first_try.set()
            await trio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _on_message(self, data: Any) -> None:
        if not isinstance(data, bytes) or not data:
            return
        kind, body = data[:1], data[1:]
        try:
            if kind in (b"f", b"r"):
                self._notifier.notify(bytes.fromhex(body.decode("ascii")))
            elif kind == b"L":
                until, key = body.split(b"|", 1)
                self.gate.note(key.decode(), float(until), self._wall_clock())
        except ValueError:
            log.debug("ignored a malformed announcement on %s", self.keys.channel)

    async def _sync_limits(self) -> None:
        limits = await self._call("limits", lambda c: c.hgetall(self.keys.limits))
        now = self._wall_clock()
        for key, until in limits.items():
            try:
                self.gate.note(key.decode(), float(until), now)
            except ValueError:
                continue

    async def _beat_forever(self) -> None:
        while True:
            with suppress(SharedStateUnavailableError):  # counted; the failover watches
                await self.beat()
            await trio.sleep(self.settings.heartbeat)

    async def beat(self) -> int:
        """Say this hub is alive; hand on the leases of hubs whose heartbeat lapsed."""
        now = self._now_ms()
        live, released = await self._run(
            "BEAT", [self.keys.hubs, self.keys.hub_holders(self.instance)],
            [self.keys.prefix, now, self.instance, now + _ms(self.settings.hub_ttl),
             self.keys.channel, self._holders_ttl_ms()])
        self._shared["shared_hubs"] = int(live)
        if released:
            log.warning("handed on %d lease(s) of hubs that stopped answering", released)
            self.leases_reaped += int(released)
        return int(released)

    async def _figures_forever(self) -> None:
        while True:
            with suppress(SharedStateUnavailableError):
                await self.refresh_figures()
            await trio.sleep(self.settings.figures_interval)

    async def refresh_figures(self) -> None:
        """Count the fleet's entries and leases (one SCAN) and read Redis's memory use."""
        prefix = self.keys.prefix.encode()
        counts = {b"e:": 0, b"l:": 0}
        cursor = 0
        while True:
            cursor, keys = await self._call("scan", functools.partial(
                scan_keys, cursor=cursor, match=self.keys.prefix + "*",
                cluster=self.settings.cluster, route=self.keys.prefix))
            for key in keys:
                kind = key[len(prefix):len(prefix) + 2]
                if kind in counts:
                    counts[kind] += 1
            if cursor == 0:
                break
        memory = await self._call("info", lambda c: routed(c.info("memory"),
                                                            self.settings.cluster,
                                                            self.keys.prefix))
        used = memory.get("used_memory", 0)
        self._shared.update(total_entries=counts[b"e:"], fills_in_flight=counts[b"l:"],
                            bytes_stored=int(used) if isinstance(used, int | float) else 0)

    # -- helpers -----------------------------------------------------------------------------

    async def _call(self, what: str, command: Callable[[RedisClient], Awaitable[T]]) -> T:
        client = self._client
        if client is None:
            raise SharedStateUnavailableError("the Redis client is not running")
        try:
            with trio.fail_after(self.settings.op_timeout):
                result = await command(client)
        except trio.TooSlowError:
            self._failed()
            raise SharedStateUnavailableError(
                f"Redis at {self.settings.display} did not answer {what} within "
                f"{self.settings.op_timeout:g} s") from None
        except BROKEN as exc:
            self._failed()
            raise SharedStateUnavailableError(
                f"Redis at {self.settings.display} failed {what}: {reason(exc)}") from exc
        self._healthy = True
        return result

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run the Lua script ``name`` (loaded again by coredis after a Redis restart)."""
        script = self._scripts[name]
        return await self._call(name.lower(), lambda c: script(keys=keys, args=args, client=c))

    def _failed(self) -> None:
        self.errors += 1
        self._healthy = False

    def _holder(self, holder: str) -> str:
        # Connection names are per hub (``peer#n``): prefix ours so hubs never collide, and
        # hash them so Redis does not even learn the runners' peer ids.
        digest = hashlib.blake2b(holder.encode(), digest_size=8).hexdigest()
        return f"{self.instance}-{digest}"

    def _holders_ttl_ms(self) -> int:
        return _ms(max(self.lease_ttl, self.settings.hub_ttl) * 2)

    def _now_ms(self) -> int:
        return _ms(self._wall_clock())


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _stored(fields: Any) -> StoredEnvelope | None:
    """``[v, f, s, t]`` from a script, as the service wants it."""
    envelope, fresh_until, stored_at, tag = fields
    if envelope is None:
        return None
    return StoredEnvelope(bytes(envelope), int(fresh_until) / 1000, int(stored_at) / 1000,
                          bytes.fromhex(tag.decode()) if tag else None)
