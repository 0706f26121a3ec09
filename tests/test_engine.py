"""The daemon's trio engine, one test per outcome, against the real simulator (over HTTP) and
the in-memory fleet fake (the hub's own lease logic, without the network).

Counts come from the simulator's records and the engines' statistics.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

from github_p2p.cache.fleet import SealedFleet
from github_p2p.cache.localstore import LocalStore
from github_p2p.cache.trio_engine import TrioCacheEngine
from github_p2p.cache.upstream import Upstream
from github_p2p.core.flow import FlowSettings
from github_p2p.core.keys import derive_fleet_keys
from github_p2p.core.ratelimit import RetrySettings
from github_p2p.core.sealing import FleetSeal
from github_p2p.core.stats import Outcome, Stats
from github_p2p.errors import UpstreamUnavailableError
from github_p2p.testing.fakes import MemoryFleet, MemoryHub

TOKEN = "ghs_enginetest0001"
REPO = "/repos/octo/hello"
KEYS = derive_fleet_keys("engine-test-secret", "octo/hello", iterations=1000)


class Runner:
    """One runner: an engine with its own store, on a shared in-memory hub."""

    def __init__(self, api_url: str, store_dir, hub: MemoryHub | None, *,
                 clock: Callable[[], float], fleet_wait: float = 5.0) -> None:
        self.stats = Stats()
        self.transport = MemoryFleet(hub) if hub is not None else None
        fleet = SealedFleet(self.transport, FleetSeal(KEYS)) if self.transport else None
        self.store = LocalStore(store_dir)
        self.engine = TrioCacheEngine(
            settings=FlowSettings(api_url=api_url, scope="octo/hello", fleet=fleet is not None,
                                  fleet_wait=fleet_wait),
            upstream=Upstream(self.stats, retry=RetrySettings(max_retries=0)),
            stats=self.stats, store=self.store, fleet=fleet, clock=clock)

    async def get(self, path: str = REPO):
        return await self.engine.handle("GET", path, (), {}, None, TOKEN)


@pytest.fixture
def runners(sim, tmp_path, clock):
    hub = MemoryHub()
    made: list[Runner] = []

    def make(name: str = "r", *, fleet: bool = True, **kw) -> Runner:
        runner = Runner(sim.url, tmp_path / f"{name}{len(made)}", hub if fleet else None,
                        clock=clock, **kw)
        made.append(runner)
        return runner

    make.hub = hub  # type: ignore[attr-defined]
    yield make
    for runner in made:
        runner.store.close()


def calls(sim, path=REPO):
    return len([r for r in sim.records() if r.path == path])


async def test_hit_local_then_hit_peer(sim, runners):
    a, b = runners("a"), runners("b")
    assert (await a.get()).outcome is Outcome.MISS
    assert (await a.get()).outcome is Outcome.HIT_LOCAL
    peer = await b.get()
    assert peer.outcome is Outcome.HIT_PEER and peer.upstream_calls == 0
    assert calls(sim) == 1
    assert a.stats.snapshot()["api_calls_made"] + b.stats.snapshot()["api_calls_made"] == 1


async def test_concurrent_misses_coalesce_into_one_call(sim, runners):
    sim.set_latency(0.3)
    engines = [runners(f"r{i}") for i in range(4)]
    outcomes: list[Outcome] = []

    async def one(runner: Runner) -> None:
        outcomes.append((await runner.get()).outcome)

    async with trio.open_nursery() as nursery:
        for runner in engines:
            nursery.start_soon(one, runner)
    assert calls(sim) == 1
    assert sorted(o.value for o in outcomes) == ["hit-peer"] * 3 + ["miss"]
    assert sum(r.stats.snapshot()["coalesced_waits"] for r in engines) == 3


async def test_miss_revalidated_after_the_ttl(sim, runners, clock):
    a = runners("a")
    await a.get("/repos/octo/hello/pulls")
    clock.advance(61)
    again = await a.get("/repos/octo/hello/pulls")
    assert again.outcome is Outcome.REVALIDATED
    records = [r for r in sim.records() if r.path == "/repos/octo/hello/pulls"]
    assert [(r.status, r.conditional) for r in records] == [(200, False), (304, True)]


async def test_stale_when_github_fails(sim, runners, clock):
    a = runners("a")
    first = await a.get()
    clock.advance(301)
    sim.fail_next(3, 502)
    stale = await a.get()
    assert stale.outcome is Outcome.STALE and stale.body == first.body
    assert a.stats.snapshot()["stale_served"] == 1
    assert runners.hub.state.figures()["fills_in_flight"] == 0


async def test_bypass_for_a_write(sim, runners):
    a = runners("a")
    answer = await a.engine.handle("POST", "/repos/octo/hello/issues", (),
                                   {"content-type": "application/json"}, b'{"title": "t"}', TOKEN)
    assert answer.outcome is Outcome.BYPASS and answer.status == 201
    assert runners.hub.calls.get("invalidate") == 1


async def test_too_large_to_share_is_answered_and_counted(sim, runners):
    body = "x" * (5 * 1024 * 1024)
    sim.set_resource("/repos/octo/hello/contents/big.txt", {"content": body})
    a, b = runners("a"), runners("b")
    answer = await a.get("/repos/octo/hello/contents/big.txt")
    assert answer.status == 200 and len(answer.body) > 5 * 1024 * 1024
    assert a.stats.snapshot()["too_large_to_share"] == 1
    assert (await a.get("/repos/octo/hello/contents/big.txt")).outcome is Outcome.HIT_LOCAL
    # Not shared: the other runner pays for itself, and no lease is left behind.
    assert (await b.get("/repos/octo/hello/contents/big.txt")).outcome is Outcome.MISS
    assert runners.hub.state.figures()["fills_in_flight"] == 0


async def test_upstream_error_raises_and_releases_the_lease(sim, runners, tmp_path, clock):
    hub = runners.hub
    dead = Runner("http://127.0.0.1:9", tmp_path / "dead", hub, clock=clock)
    try:
        with pytest.raises(UpstreamUnavailableError):
            await dead.get()
        assert dead.stats.snapshot()["errors"] == 1
        assert hub.calls.get("release") == 1
        assert hub.state.figures()["fills_in_flight"] == 0
    finally:
        dead.store.close()


async def test_lease_lost_when_the_hub_goes_away_mid_fill(sim, runners):
    sim.set_latency(0.3)
    a = runners("a")

    async def hub_dies() -> None:
        while runners.hub.calls.get("lease", 0) == 0:
            await trio.sleep(0.01)
        runners.hub.down = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(hub_dies)
        answer = await a.get()
    assert answer.status == 200 and answer.outcome is Outcome.MISS
    assert a.stats.snapshot()["fleet_errors"] == 1


async def test_waiter_that_times_out_asks_github_itself(sim, runners):
    sim.set_latency(0.5)
    holder, waiter = runners("h"), runners("w", fleet_wait=0.05)
    results = {}

    async def one(name: str, runner: Runner) -> None:
        results[name] = await runner.get()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "h", holder)
        while runners.hub.calls.get("lease", 0) == 0:
            await trio.sleep(0.01)
        nursery.start_soon(one, "w", waiter)
    assert results["h"].outcome is Outcome.MISS and results["w"].outcome is Outcome.MISS
    assert calls(sim) == 2
    assert runners.hub.state.figures()["lease_timeouts"] == 1


async def test_a_tampered_envelope_is_refused_and_counted(sim, runners):
    a, b = runners("a"), runners("b")
    await a.get()
    b.transport.tamper = lambda env: env[:-1] + bytes([env[-1] ^ 1])
    answer = await b.get()
    assert answer.outcome is Outcome.MISS
    assert b.stats.snapshot()["integrity_failures"] == 1
