"""Lease coalescing on a mock clock: one fill for many askers, takeover when a holder dies.

Every test runs against the board over each envelope store (memory, and disk in threads).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from github_p2p.core.lease import LeaseOutcome
from github_p2p.nodes.hub.envelopes import DiskEnvelopeStore, EnvelopeStore, MemoryEnvelopeStore
from github_p2p.nodes.hub.leases import LeaseBoard

ID = bytes(range(32))
TAG = bytes(32 * [7])


@pytest.fixture(params=["memory", "disk"])
async def board(request, tmp_path) -> AsyncIterator[LeaseBoard]:
    store: EnvelopeStore = (MemoryEnvelopeStore() if request.param == "memory"
                            else DiskEnvelopeStore(tmp_path / "hub"))
    yield LeaseBoard(store, lease_ttl=30.0)
    store.close()


@pytest.fixture
def autojump_clock(request):
    # The disk store answers from worker threads, which a mock clock does not see as busy:
    # jump only after the loop has been idle a while, so a pending read is not skipped over.
    disk = request.node.callspec.params.get("board") == "disk"
    return trio.testing.MockClock(autojump_threshold=0.25 if disk else 0)


async def test_first_asker_is_granted_others_wait_for_the_fill(board, autojump_clock):
    results: dict[str, LeaseOutcome] = {}

    async def asker(name: str) -> None:
        answer = await board.lease(ID, name, wait=10)
        results[name] = answer.outcome
        if answer.outcome is LeaseOutcome.GRANTED:
            await trio.sleep(1)  # "fetching from GitHub"
            await board.store.put(ID, b"sealed", fresh_ttl=60, keep_ttl=600, tag=TAG)
            board.fill(ID, answer.lease.token)

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(asker, f"r{i}")
    assert sorted(results.values()) == [LeaseOutcome.FILLED] * 4 + [LeaseOutcome.GRANTED]
    assert board.stats.granted == 1 and board.stats.filled == 4
    late = await board.lease(ID, "late", wait=10)
    assert late.outcome is LeaseOutcome.HIT and late.fresh and late.payload.envelope == b"sealed"
    assert board.in_flight == 0


async def test_waiter_times_out_with_bounded_wait(board, autojump_clock):
    first = await board.lease(ID, "holder", wait=1)
    assert first.outcome is LeaseOutcome.GRANTED and first.lease is not None
    start = trio.current_time()
    second = await board.lease(ID, "other", wait=2)
    assert second.outcome is LeaseOutcome.TIMEOUT and second.lease is None
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
    assert first.outcome is LeaseOutcome.GRANTED
    assert outcome["w"].outcome is LeaseOutcome.GRANTED
    assert outcome["w"].lease.token != first.lease.token
    assert board.stats.takeovers == 1


async def test_expired_lease_is_taken_over(board, autojump_clock):
    await board.lease(ID, "slow", wait=0)
    answer = await board.lease(ID, "next", wait=60)  # outlives the 30 s lease
    assert answer.outcome is LeaseOutcome.GRANTED
    assert board.stats.expired == 1


async def test_release_with_wrong_token_is_refused(board, autojump_clock):
    held = await board.lease(ID, "a", wait=0)
    assert not board.release(ID, "not-the-token")
    assert board.release(ID, held.lease.token)
    assert board.in_flight == 0


async def test_a_stale_entry_rides_along_with_a_grant(board, autojump_clock):
    await board.store.put(ID, b"old", fresh_ttl=0, keep_ttl=600, tag=None)
    answer = await board.lease(ID, "a", wait=0)
    assert answer.outcome is LeaseOutcome.GRANTED
    assert answer.payload is not None and answer.payload.envelope == b"old"
    assert not answer.fresh


class _SlowReads(MemoryEnvelopeStore):
    """A store whose reads take a while and answer what was there when they started, as a
    read in a worker thread does."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: trio.Event | None = None
        self.reading = trio.Event()

    async def get(self, entry_id: bytes):  # type: ignore[no-untyped-def]
        snapshot = await super().get(entry_id)
        if self.gate is not None:
            self.reading.set()
            await self.gate.wait()
        return snapshot


async def test_a_read_that_raced_a_fill_does_not_grant_a_second_fetch():
    store = _SlowReads()
    board = LeaseBoard(store, lease_ttl=30.0)
    first = await board.lease(ID, "a", wait=0)
    assert first.outcome is LeaseOutcome.GRANTED
    store.gate = trio.Event()
    got = {}

    async def late_asker() -> None:
        got["answer"] = await board.lease(ID, "c", wait=10)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(late_asker)
        await store.reading.wait()  # c's read started before the fill...
        gate, store.gate = store.gate, None
        await store.put(ID, b"filled", fresh_ttl=60, keep_ttl=600, tag=None)
        board.fill(ID, first.lease.token)  # ...and the fill lands before it answers
        gate.set()
    assert got["answer"].outcome is LeaseOutcome.HIT
    assert got["answer"].payload.envelope == b"filled"
    assert board.stats.granted == 1
