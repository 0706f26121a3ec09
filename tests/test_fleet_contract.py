"""One contract, every fleet transport: the in-memory fake, and the libp2p router linked to a
real hub (libp2p hosts on loopback, Noise, yamux, the private-network key) in this trio run;
each also over hubs whose state is in a real redis-server (one hub, and two hubs sharing it
with the runners linked to one or the other).

What every transport promises the engine: a miss grants one lease, concurrent askers wait for
its fill, a release hands the lease on, a wait is bounded, a stale entry rides along with a
grant, and invalidating a tag forgets every variant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from redis_support import redis_states

from github_p2p.cache.fleet import FleetTransport
from github_p2p.core.keys import derive_master_key, network_key_from_master
from github_p2p.core.lease import LeaseOutcome
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.p2p.host import HostSettings, running_host
from github_p2p.p2p.link import HubLink, LinkSettings
from github_p2p.p2p.messages import Hello
from github_p2p.p2p.router import FleetRouter
from github_p2p.testing.fakes import MemoryFleet, MemoryHub
from github_p2p.testing.localfleet import free_port

ID = bytes(range(32))
TAG = bytes([9]) * 32



class Factory:
    """Makes runners' transports to one hub, and tells how many wait at that hub."""

    def __init__(self, make: Callable[[], Awaitable[FleetTransport]],
                 waiters: Callable[[], int]) -> None:
        self.make = make
        self.waiters = waiters

    async def __call__(self) -> FleetTransport:
        return await self.make()

    async def until_waiting(self, n: int) -> None:
        with trio.fail_after(10):
            while self.waiters() < n:
                await trio.sleep(0.005)


@asynccontextmanager
async def memory_fleet(_tmp_path) -> AsyncIterator[Factory]:
    hub = MemoryHub()

    async def make() -> FleetTransport:
        return MemoryFleet(hub)

    yield Factory(make, lambda: int(hub.state.figures()["waiters"]))


@asynccontextmanager
async def libp2p_fleet(tmp_path, states: list | None = None) -> AsyncIterator[Factory]:
    """Runners linked to one hub, or to hubs over ``states`` (each runner to the next hub)."""
    key = network_key_from_master(derive_master_key("contract-secret", iterations=1000))
    hubs = [HubService(HubSettings(cache_dir=tmp_path / f"hub{i}", network_key=key,
                                   listen_host="127.0.0.1", port=free_port()), state)
            for i, state in enumerate(states or [None])]
    async with trio.open_nursery() as nursery:
        addresses = [(await nursery.start(hub.run)).multiaddrs[0] for hub in hubs]
        made = 0

        async def runner_host(address: str, task_status=trio.TASK_STATUS_IGNORED) -> None:
            async with running_host(HostSettings(listen_host="127.0.0.1", port=free_port(),
                                                 psk=key)) as me:
                link = HubLink(me, address, lambda rid: Hello(rid, "runner", "X64", "t", "0"),
                               LinkSettings())
                await nursery.start(link.run)
                task_status.started(FleetRouter([link]))
                await trio.sleep_forever()

        async def make() -> FleetTransport:
            nonlocal made
            made += 1
            router: FleetRouter = await nursery.start(runner_host, addresses[made % len(hubs)])
            return router

        try:
            yield Factory(make, lambda: sum(int(h.state.figures()["waiters"]) for h in hubs))
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def redis_fleet(kind: str, request, tmp_path) -> AsyncIterator[Factory]:
    server = request.getfixturevalue("redis_server")
    async with redis_states(server.url, 2 if kind == "redis-two-hubs" else 1) as states:
        if kind == "redis-memory":
            hub = MemoryHub(state=states[0])

            async def make() -> FleetTransport:
                return MemoryFleet(hub)

            yield Factory(make, lambda: int(states[0].figures()["waiters"]))
            return
        async with libp2p_fleet(tmp_path, list(states)) as factory:
            yield factory


@pytest.fixture(params=["memory", "libp2p", "redis-memory", "redis-libp2p", "redis-two-hubs"])
async def fleet(request, tmp_path) -> AsyncIterator[Factory]:
    if request.param.startswith("redis"):
        async with redis_fleet(request.param, request, tmp_path) as factory:
            yield factory
        return
    make = memory_fleet if request.param == "memory" else libp2p_fleet
    async with make(tmp_path) as factory:
        yield factory


async def test_a_miss_grants_a_lease_and_the_fill_is_then_a_hit(fleet):
    one, two = await fleet(), await fleet()
    first = await one.lease(ID, 0)
    assert first.outcome is LeaseOutcome.GRANTED and first.lease is not None
    assert first.payload is None
    await one.put(ID, b"sealed", fresh_ttl=60, keep_ttl=600, lease=first.lease, tag=TAG)
    hit = await two.lease(ID, 0)
    assert hit.outcome is LeaseOutcome.HIT and hit.fresh and hit.payload == b"sealed"
    assert hit.lease is None


async def test_concurrent_askers_wait_for_the_fill(fleet):
    holder, waiter = await fleet(), await fleet()
    granted = await holder.lease(ID, 0)
    got = {}

    async def wait() -> None:
        got["answer"] = await waiter.lease(ID, 10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await fleet.until_waiting(1)
        await holder.put(ID, b"filled", fresh_ttl=60, keep_ttl=600, lease=granted.lease,
                         tag=None)
    assert got["answer"].outcome is LeaseOutcome.FILLED and got["answer"].payload == b"filled"


async def test_a_release_hands_the_lease_to_the_next_asker(fleet):
    one, two = await fleet(), await fleet()
    first = await one.lease(ID, 0)
    await one.release(ID, first.lease)
    second = await two.lease(ID, 0)
    assert second.outcome is LeaseOutcome.GRANTED
    assert second.lease is not None and second.lease.token != first.lease.token


async def test_a_wait_is_bounded(fleet):
    one, two = await fleet(), await fleet()
    await one.lease(ID, 0)
    with trio.fail_after(5):
        answer = await two.lease(ID, 0.2)
    assert answer.outcome is LeaseOutcome.TIMEOUT and answer.lease is None


async def test_a_stale_entry_rides_along_with_a_grant(fleet):
    one = await fleet()
    await one.put(ID, b"old", fresh_ttl=0, keep_ttl=600, lease=None, tag=None)
    answer = await one.lease(ID, 0)
    assert answer.outcome is LeaseOutcome.GRANTED
    assert answer.payload == b"old" and not answer.fresh


async def test_invalidating_a_tag_forgets_every_variant(fleet):
    one = await fleet()
    other = bytes([7]) * 32
    await one.put(ID, b"a", fresh_ttl=60, keep_ttl=600, lease=None, tag=TAG)
    await one.put(other, b"b", fresh_ttl=60, keep_ttl=600, lease=None, tag=TAG)
    await one.invalidate([TAG])
    assert (await one.lease(ID, 0)).outcome is LeaseOutcome.GRANTED
    assert (await one.lease(other, 0)).outcome is LeaseOutcome.GRANTED
