"""Lease coalescing on a mock clock: one fill for many askers, takeover when a holder dies."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from github_p2p.nodes.hub.blindstore import BlindStore
from github_p2p.nodes.hub.leases import LeaseBoard

ID = bytes(range(32))
TAG = bytes(32 * [7])


@pytest.fixture
def board(tmp_path):
    store = BlindStore(tmp_path / "hub")
    yield LeaseBoard(store, lease_ttl=30.0)
    store.close()


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


async def test_first_asker_is_granted_others_wait_for_the_fill(board, autojump_clock):
    results: dict[str, str] = {}

    async def asker(name: str) -> None:
        decision = await board.lease(ID, name, wait=10)
        results[name] = decision.outcome
        if decision.outcome == "granted":
            await trio.sleep(1)  # "fetching from GitHub"
            board.store.put(ID, b"sealed", fresh_ttl=60, keep_ttl=600, tag=TAG)
            board.fill(ID, decision.token)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(asker, f"r{i}")
    assert sorted(results.values()) == ["filled"] * 4 + ["granted"]
    assert board.stats.granted == 1 and board.stats.filled == 4
    assert (await board.lease(ID, "late", wait=10)).outcome == "hit"
    assert board.in_flight == 0


async def test_waiter_times_out_with_bounded_wait(board, autojump_clock):
    first = await board.lease(ID, "holder", wait=1)
    assert first.outcome == "granted"
    start = trio.current_time()
    second = await board.lease(ID, "other", wait=2)
    assert second.outcome == "timeout"
    assert trio.current_time() - start == pytest.approx(2)


async def test_dead_holder_hands_over_to_a_waiter(board, autojump_clock):
    first = await board.lease(ID, "dies", wait=1)
    outcome = {}

    async def waiter() -> None:
        outcome["w"] = await board.lease(ID, "waiter", wait=10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(0.5)
        assert board.waiting == 1
        assert board.release_holder("dies") == 1
    assert first.outcome == "granted"
    assert outcome["w"].outcome == "granted" and outcome["w"].token != first.token
    assert board.stats.takeovers == 1


async def test_expired_lease_is_taken_over(board, autojump_clock):
    await board.lease(ID, "slow", wait=0)
    decision = await board.lease(ID, "next", wait=60)  # outlives the 30 s lease
    assert decision.outcome == "granted"
    assert board.stats.expired == 1


async def test_release_with_wrong_token_is_refused(board, autojump_clock):
    held = await board.lease(ID, "a", wait=0)
    assert not board.release(ID, "not-the-token")
    assert board.release(ID, held.token)
    assert board.in_flight == 0


def test_blind_store_tag_invalidation_and_freshness(tmp_path):
    now = [1000.0]
    store = BlindStore(tmp_path / "s", clock=lambda: now[0])
    other = bytes(32 * [9])
    store.put(ID, b"a", fresh_ttl=10, keep_ttl=100, tag=TAG)
    store.put(other, b"b", fresh_ttl=10, keep_ttl=100, tag=TAG)
    got = store.get(ID)
    assert got is not None and got.envelope == b"a" and got.is_fresh(now[0])
    assert not got.is_fresh(now[0] + 11)
    assert store.delete(TAG) == 2
    assert store.get(ID) is None and store.get(other) is None
    store.close()
