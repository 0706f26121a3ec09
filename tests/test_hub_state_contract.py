"""One contract, every hub state: what the hub's protocol service may rely on from a
:class:`~github_p2p.nodes.hub.state.HubState`, whichever keeps it.

Run against the in-process state (memory store and lease board), the Redis state on a real
redis-server (one hub, and two hubs sharing it, askers alternating between them), two hubs on a
real three-node Redis Cluster, and the Redis state behind its failover wrapper. Waits are
synchronised on the states' own waiter counts, never on sleeps; the times involved only bound
the waits.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
import trio
from redis_support import eventually, failover_state, redis_states

from github_p2p.core.lease import LeaseOutcome
from github_p2p.nodes.hub.envelopes import MemoryEnvelopeStore
from github_p2p.nodes.hub.state import HubState, LocalHubState

ID = bytes(range(32))
OTHER = bytes([7]) * 32
TAG = bytes([9]) * 32


class Hubs:
    """The hub states of one set-up; asker ``i`` asks ``at(i)``."""

    def __init__(self, states: list[HubState]) -> None:
        self.states = states

    def at(self, index: int) -> HubState:
        return self.states[index % len(self.states)]

    def figure(self, name: str) -> int:
        return sum(int(state.figures().get(name, 0)) for state in self.states)

    async def until_waiting(self, count: int) -> None:
        await eventually(lambda: self.figure("waiters") >= count, f"{count} waiters")


Make = Callable[..., AbstractAsyncContextManager[Hubs]]


@pytest.fixture(params=["local", "redis", "redis-two-hubs", "redis-cluster", "failover"])
def make_hubs(request) -> Make:
    kind = request.param

    @asynccontextmanager
    async def make(lease_ttl: float = 30.0) -> AsyncIterator[Hubs]:
        if kind == "local":
            state = LocalHubState(MemoryEnvelopeStore(), lease_ttl=lease_ttl)
            yield Hubs([state])
            state.close()
            return
        if kind == "redis-cluster":
            cluster = request.getfixturevalue("redis_cluster")
            cluster.flush()
            async with redis_states(cluster.url, 2, lease_ttl=lease_ttl) as states:
                yield Hubs(list(states))
            return
        server = request.getfixturevalue("redis_server")
        if kind == "failover":
            async with failover_state(server.url, lease_ttl=lease_ttl) as failover:
                assert failover.status == "active"
                yield Hubs([failover])
            return
        count = 2 if kind == "redis-two-hubs" else 1
        async with redis_states(server.url, count, lease_ttl=lease_ttl) as states:
            yield Hubs(list(states))

    return make


async def test_first_asker_is_granted_others_wait_for_the_fill(make_hubs):
    async with make_hubs() as hubs:
        results: dict[int, LeaseOutcome] = {}

        async def asker(index: int) -> None:
            answer = await hubs.at(index).lease(ID, f"r{index}", wait=30)
            results[index] = answer.outcome
            if answer.outcome is LeaseOutcome.GRANTED:
                await hubs.until_waiting(4)  # "fetching from GitHub" while the others wait
                await hubs.at(index).put(ID, b"sealed", fresh_ttl=60, keep_ttl=600, tag=TAG,
                                         lease_token=answer.lease.token)

        async with trio.open_nursery() as nursery:
            for index in range(5):
                nursery.start_soon(asker, index)
        assert sorted(results.values()) == [LeaseOutcome.FILLED] * 4 + [LeaseOutcome.GRANTED]
        assert hubs.figure("leases_granted") == 1 and hubs.figure("coalesced_waits") == 4
        late = await hubs.at(5).lease(ID, "late", wait=10)
        assert late.outcome is LeaseOutcome.HIT and late.fresh
        assert late.payload is not None and late.payload.envelope == b"sealed"


async def test_a_wait_is_bounded(make_hubs):
    async with make_hubs() as hubs:
        first = await hubs.at(0).lease(ID, "holder", wait=1)
        assert first.outcome is LeaseOutcome.GRANTED and first.lease is not None
        with trio.fail_after(10):
            second = await hubs.at(1).lease(ID, "other", wait=0.3)
        assert second.outcome is LeaseOutcome.TIMEOUT and second.lease is None
        assert hubs.figure("lease_timeouts") == 1


async def test_a_disconnected_holders_lease_goes_to_a_waiter(make_hubs):
    async with make_hubs() as hubs:
        first = await hubs.at(0).lease(ID, "dies", wait=0)
        got = {}

        async def waiter() -> None:
            got["answer"] = await hubs.at(1).lease(ID, "waiter", wait=30)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await hubs.until_waiting(1)
            assert await hubs.at(0).release_holder("dies") == 1
        assert got["answer"].outcome is LeaseOutcome.GRANTED
        assert got["answer"].lease.token != first.lease.token
        assert hubs.figure("lease_takeovers") == 1


async def test_a_lapsed_lease_is_taken_over(make_hubs):
    async with make_hubs(lease_ttl=0.5) as hubs:
        first = await hubs.at(0).lease(ID, "slow", wait=0)
        with trio.fail_after(20):
            answer = await hubs.at(1).lease(ID, "next", wait=15)  # outlives the 0.5 s lease
        assert answer.outcome is LeaseOutcome.GRANTED
        assert answer.lease.token != first.lease.token


async def test_a_release_needs_the_lease_token(make_hubs):
    async with make_hubs() as hubs:
        held = await hubs.at(0).lease(ID, "a", wait=0)
        assert not await hubs.at(0).release(ID, "not-the-token")
        assert (await hubs.at(1).lease(ID, "b", wait=0)).outcome is LeaseOutcome.TIMEOUT
        assert await hubs.at(0).release(ID, held.lease.token)
        assert not await hubs.at(0).release(ID, held.lease.token)
        again = await hubs.at(1).lease(ID, "b", wait=0)
        assert again.outcome is LeaseOutcome.GRANTED


async def test_a_stale_entry_rides_along_with_a_grant(make_hubs):
    async with make_hubs() as hubs:
        await hubs.at(0).put(ID, b"old", fresh_ttl=0, keep_ttl=600, tag=None, lease_token=None)
        answer = await hubs.at(1).lease(ID, "a", wait=0)
        assert answer.outcome is LeaseOutcome.GRANTED
        assert answer.payload is not None and answer.payload.envelope == b"old"
        assert not answer.fresh
        stored = await hubs.at(0).get(ID)
        assert stored is not None and not stored.is_fresh(time.time())


async def test_any_put_wakes_the_waiters(make_hubs):
    async with make_hubs() as hubs:
        await hubs.at(0).lease(ID, "holder", wait=0)
        got = {}

        async def waiter() -> None:
            got["answer"] = await hubs.at(1).lease(ID, "waiter", wait=30)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await hubs.until_waiting(1)
            # Not the holder's put (another runner had it already): still a fill.
            await hubs.at(2).put(ID, b"from-elsewhere", fresh_ttl=60, keep_ttl=600, tag=None,
                                 lease_token="someone-elses")
        assert got["answer"].outcome is LeaseOutcome.FILLED
        assert got["answer"].payload.envelope == b"from-elsewhere"


async def test_deleting_a_tag_forgets_every_variant_and_an_id_its_entry(make_hubs):
    async with make_hubs() as hubs:
        third = bytes([3]) * 32
        for ident in (ID, OTHER):
            await hubs.at(0).put(ident, b"v", fresh_ttl=60, keep_ttl=600, tag=TAG,
                                 lease_token=None)
        await hubs.at(0).put(third, b"w", fresh_ttl=60, keep_ttl=600, tag=None,
                             lease_token=None)
        assert await hubs.at(1).delete(TAG) >= 1
        assert await hubs.at(0).get(ID) is None and await hubs.at(1).get(OTHER) is None
        assert (await hubs.at(0).lease(ID, "a", wait=0)).outcome is LeaseOutcome.GRANTED
        assert await hubs.at(0).get(third) is not None
        assert await hubs.at(1).delete(third) == 1
        assert await hubs.at(0).get(third) is None
        # A new variant under the same tag lives again.
        await hubs.at(0).put(OTHER, b"new", fresh_ttl=60, keep_ttl=600, tag=TAG,
                             lease_token=None)
        stored = await hubs.at(1).get(OTHER)
        assert stored is not None and stored.envelope == b"new" and stored.tag == TAG


async def test_rate_limits_reach_every_hub_and_lapse(make_hubs):
    async with make_hubs() as hubs:
        now = time.time()
        await hubs.at(0).note_limit("search", now + 60)
        await hubs.at(0).note_limit("search", now + 30)  # an earlier time does not shorten it

        async def seen() -> bool:
            return (await hubs.at(1).limits(time.time())).get("search") == pytest.approx(
                now + 60)

        await eventually(seen, "the limit at the other hub")
        assert "search" not in await hubs.at(1).limits(now + 61)
