"""The heartbeat: a node keeps its registry entry fresh and reads everyone else's.

One heartbeat is one read pass (:meth:`Registry.scan`), one upsert of the node's own entry, and,
on a bootstrap node, the pruning of expired entries (bounded per beat). Heartbeats are spaced
``interval`` apart with jitter, so a fleet started at once does not beat in lockstep; records
expire after ``ttl`` (several intervals), so a missed beat or two does not drop a node, and
readers believe no record longer than :attr:`HeartbeatSettings.max_age`. Each record of a run
carries the next sequence number. A clean shutdown replaces the entry with a withdrawal, which
no copy of an earlier record can outlive (see :mod:`.listing`).

:meth:`RegistryAgent.beat` is synchronous (registries do blocking I/O); :meth:`RegistryAgent.run`
is the trio task a daemon starts in its nursery, running each beat in a worker thread.
"""

from __future__ import annotations

import logging
import math
import random as _random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from github_p2p.errors import ConfigError, GitHubP2PError
from github_p2p.registry.interface import Registry
from github_p2p.registry.listing import Listing
from github_p2p.registry.record import NodeIdentity

__all__ = ["Heartbeat", "HeartbeatSettings", "RegistryAgent"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class HeartbeatSettings:
    """How often a node beats and how long its record lives."""

    interval: float = 600.0
    #: Each wait is ``interval`` times a random factor within ``1 ± jitter``.
    jitter: float = 0.1
    #: Record lifetime; defaults to three intervals.
    ttl: float | None = None
    #: Bootstrap nodes delete expired records, at most this many per beat.
    prune: bool = False
    max_prune: int = 25
    #: Longest the first beat may hold up a node's start, and a withdrawal its exit.
    first_beat_timeout: float = 20.0
    withdraw_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in ("interval", "first_beat_timeout", "withdraw_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"registry {name} must be positive")
        if not 0 <= self.jitter < 1:
            raise ConfigError("registry jitter must be within [0, 1)")
        if self.ttl is not None and self.ttl <= self.interval * (1 + self.jitter):
            raise ConfigError("the registry ttl must outlast the longest heartbeat interval")
        if self.max_prune < 0:
            raise ConfigError("max_prune must not be negative")

    @property
    def lifetime(self) -> float:
        """Seconds a published record stays live."""
        return self.ttl if self.ttl is not None else 3 * self.interval

    @property
    def max_age(self) -> float:
        """Longest this node believes anyone's record, whatever the record claims: its
        lifetime plus one interval (four intervals by default). Nodes of one fleet should
        share one interval."""
        return self.lifetime + self.interval


@dataclass(frozen=True)
class Heartbeat:
    """What one beat did."""

    listing: Listing | None
    published: bool
    pruned: int
    #: Requests the beat made, and calls of those that reached GitHub (0 for a file registry).
    requests: int
    api_calls: int
    error: str | None = None


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run blocking registry I/O in a worker thread that a timeout may abandon (the agent's
    lock keeps an abandoned call from overlapping the next one)."""
    import trio  # the fleet extra: only daemons run agents (the client imports this module)

    # trio-typing's stubs predate ``abandon_on_cancel`` (trio >= 0.23).
    result: T = await trio.to_thread.run_sync(fn, abandon_on_cancel=True)  # type: ignore[call-arg]
    return result


class RegistryAgent:
    """Beats for one node; :attr:`latest` is the last successful read pass."""

    def __init__(
        self,
        registry: Registry,
        identity: NodeIdentity,
        settings: HeartbeatSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] = _random.uniform,
        on_listing: Callable[[Listing], None] | None = None,
    ) -> None:
        self.registry = registry
        self.identity = identity
        self.settings = settings or HeartbeatSettings()
        self.latest: Listing | None = None
        self._clock = clock
        self._uniform = uniform
        self._on_listing = on_listing
        self._published = False
        self._seq = 0
        # A beat abandoned by a timeout may still be running in its thread.
        self._lock = threading.Lock()

    def stats(self) -> dict[str, int]:
        """``registry_*`` figures for the node's ``/_p2p/stats``."""
        return self.registry.counters.snapshot()

    def next_delay(self) -> float:
        """Seconds until the next beat."""
        jitter = self.settings.jitter
        return self.settings.interval * self._uniform(1 - jitter, 1 + jitter)

    def beat(self) -> Heartbeat:
        """Read the registry, refresh our entry, prune (bootstrap nodes). Never raises for
        GitHub or disk trouble: the error is logged, counted and returned."""
        with self._lock:
            counters = self.registry.counters
            before = (counters.get("requests"), counters.get("api_calls"))
            listing: Listing | None = None
            published = False
            pruned = 0
            error: str | None = None
            now = self._clock()
            try:
                listing = self.registry.scan(now)
                self.latest = listing
                self._seq += 1
                self.registry.publish(self.identity.record(now, now + self.settings.lifetime,
                                                           self._seq))
                published = self._published = True
                if self.settings.prune:
                    pruned = self.registry.prune(now, listing=listing,
                                                 limit=self.settings.max_prune)
            except GitHubP2PError as exc:
                error = str(exc)
                counters.add("errors")
                log.warning("registry heartbeat failed: %s", exc)
            except Exception as exc:  # a bug here must not stop the node that beats
                error = f"{type(exc).__name__}: {exc}"
                counters.add("errors")
                log.exception("registry heartbeat failed unexpectedly")
            counters.add("heartbeats")
            return Heartbeat(listing, published, pruned,
                             counters.get("requests") - before[0],
                             counters.get("api_calls") - before[1], error)

    def withdraw(self) -> int:
        """Replace our entry with a withdrawal (clean shutdown); 0 when nothing was ever
        published."""
        with self._lock:
            if not self._published:
                return 0
            now = self._clock()
            self._seq += 1
            withdrawal = self.identity.withdrawal(now, now + self.settings.max_age, self._seq)
            try:
                written = self.registry.withdraw(withdrawal)
            except Exception as exc:  # shutting down: report, never raise
                self.registry.counters.add("errors")
                log.warning("could not withdraw from the registry: %s", exc)
                return 0
            self._published = False
            return written

    async def _beat(self) -> None:
        beat = await _in_thread(self.beat)
        if beat.listing is not None and self._on_listing is not None:
            self._on_listing(beat.listing)

    async def run(self, *, task_status: Any = None) -> None:
        """Beat until cancelled, then withdraw. ``started`` after the first beat (bounded by
        ``first_beat_timeout``), so a node knows the registry before it says it is ready."""
        import trio  # the fleet extra: only daemons run agents (the client imports this module)

        try:
            with trio.move_on_after(self.settings.first_beat_timeout):
                await self._beat()
            if task_status is not None:  # nursery.start() passes one; start_soon() does not
                task_status.started()
            while True:
                await trio.sleep(self.next_delay())
                await self._beat()
        finally:
            with trio.CancelScope(shield=True):
                with trio.move_on_after(self.settings.withdraw_timeout) as scope:
                    await _in_thread(self.withdraw)
                if not scope.cancelled_caught:
                    # An abandoned withdrawal still uses the registry; the process is exiting.
                    self.registry.close()
