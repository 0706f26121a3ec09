"""One contract suite for every QueueStore, and the board's semantics over each of them.

Add a backend by adding a factory to ``STORES``; the Redis store runs against a real
``redis-server`` (the ``redis_server`` fixture). The first half drives the store interface
directly; the second half drives the :class:`QueueBoard` (what hubs and daemons answer with)
over each store, on trio's mock clock.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from redis_support import redis_queue_store

from github_p2p.core import queue as core
from github_p2p.core.queue import ItemRecord, QueueKey, QueueLimits, QueueMeta, QueuePolicy
from github_p2p.errors import QueueLimitError, QueueNotFoundError, StaleLeaseError
from github_p2p.workqueue.board import Claimed, ListConflict, QueueBoard, Snapshot
from github_p2p.workqueue.sqlite import SQLiteQueueStore
from github_p2p.workqueue.store import MemoryQueueStore, QueueStore

STORES: dict[str, Callable[[Path], QueueStore]] = {
    "memory": lambda _: MemoryQueueStore(),
    "sqlite": lambda tmp: SQLiteQueueStore(tmp / "queues.sqlite3"),
}
POLICY = QueuePolicy(lease_ttl=60, max_attempts=3)
KEY = QueueKey(bytes(32), 1)
DIGESTS = [bytes([i + 1]) * 32 for i in range(6)]


def sealed(n: int = 4) -> list[tuple[bytes, bytes]]:
    return [(DIGESTS[i], f"env{i}".encode()) for i in range(n)]


@pytest.fixture(params=[*sorted(STORES), "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[QueueStore]:
    if request.param == "redis":
        async with redis_queue_store(request.getfixturevalue("redis_server").url) as made:
            yield made
        return
    made = STORES[request.param](tmp_path)
    yield made
    made.close()


async def create(store: QueueStore, key: QueueKey = KEY, n: int = 4, owner: str = "peer-a",
                 now: float = 10.0, done_before: frozenset[bytes] = frozenset()) -> QueueMeta:
    meta = QueueMeta(key, POLICY, n, owner, now, now)
    items = core.new_items(sealed(n), done_before=done_before, now=now)
    return await store.create(meta, items)


# --- the store interface ------------------------------------------------------------------------


async def test_create_once_then_report_the_existing_queue(store):
    meta = await create(store)
    assert await store.meta(KEY) == meta
    other = QueueMeta(KEY, QueuePolicy(lease_ttl=5), 1, "peer-b", 99, 99)
    assert await store.create(other, core.new_items(sealed(1), done_before=(), now=99)) == meta
    assert await store.digests(KEY) == DIGESTS[:4]
    assert [i.envelope for i in await store.items(KEY)] == [b"env0", b"env1", b"env2", b"env3"]
    assert await store.meta(QueueKey(bytes(32), 2)) is None
    assert await store.digests(QueueKey(bytes(32), 2)) == []


async def test_update_applies_a_change_atomically(store):
    await create(store)
    token = "tok"
    after = await store.update(KEY, 2, functools.partial(
        core.claim, holder="r", token=token, now=20.0, policy=POLICY))
    assert after is not None and after.state == "leased" and after.token == token
    assert await store.item(KEY, 2) == after
    assert [i.index for i in await store.leased(KEY)] == [2]
    assert await store.update(KEY, 99, lambda rec: rec) is None

    def refuse(rec: ItemRecord) -> ItemRecord:
        raise StaleLeaseError("no")

    with pytest.raises(StaleLeaseError):
        await store.update(KEY, 2, refuse)
    assert await store.item(KEY, 2) == after  # nothing written


async def test_claim_first_takes_the_lowest_ready_index(store):
    await create(store)
    tokens = iter(f"t{i}" for i in itertools.count())

    def take(rec: ItemRecord) -> ItemRecord:
        return core.claim(rec, holder="r", token=next(tokens), now=1.0, policy=POLICY)

    order = []
    while (item := await store.claim_first(KEY, take)) is not None:
        order.append(item.index)
    assert order == [0, 1, 2, 3]
    counts = await store.counts(KEY)
    assert (counts.ready, counts.leased) == (0, 4)


async def test_counts_and_done_digests_across_attempts(store):
    await create(store, done_before=frozenset({DIGESTS[3]}))
    for index in (0, 2):
        await store.update(KEY, index, functools.partial(
            core.claim, holder="r", token=f"t{index}", now=1.0, policy=POLICY))
    await store.update(KEY, 0, lambda rec: core.complete(rec, "t0", True, 2.0, POLICY)[0])
    await store.update(KEY, 2, lambda rec: core.complete(rec, "t2", False, 2.0, POLICY)[0])
    counts = await store.counts(KEY)
    assert (counts.ready, counts.leased, counts.done, counts.failed, counts.carried) == (
        1, 0, 2, 1, 1)
    assert await store.done_digests(KEY.queue_id, 2) == {DIGESTS[0], DIGESTS[3]}
    assert await store.done_digests(KEY.queue_id, 1) == frozenset()
    assert await store.done_digests(bytes([9]) * 32, 5) == frozenset()


async def test_owners_counts_and_pruning(store):
    await create(store, QueueKey(bytes(32), 1), owner="a", now=10)
    await create(store, QueueKey(bytes(32), 2), owner="a", now=20)
    await create(store, QueueKey(bytes([1]) * 32, 1), owner="b", now=30)
    assert (await store.owned_by("a"), await store.owned_by("b"), await store.owned_by("c")) == (
        2, 1, 0)
    assert await store.queue_count() == 3
    # Activity keeps a queue alive.
    await store.update(QueueKey(bytes(32), 1), 0, functools.partial(
        core.claim, holder="r", token="t", now=40.0, policy=POLICY))
    assert await store.prune(idle_before=25) == 1
    assert await store.meta(QueueKey(bytes(32), 2)) is None
    assert await store.items(QueueKey(bytes(32), 2)) == []
    assert await store.queue_count() == 2


async def test_sqlite_survives_a_reopen(tmp_path):
    path = tmp_path / "queues.sqlite3"
    first = SQLiteQueueStore(path)
    meta = await create(first)
    leased = await first.update(KEY, 1, functools.partial(
        core.claim, holder="r", token="t", now=20.0, policy=POLICY))
    first.close()
    second = SQLiteQueueStore(path)
    try:
        assert await second.meta(KEY) == dataclasses.replace(meta, updated_at=20.0)
        assert await second.item(KEY, 1) == leased
        assert path.stat().st_mode & 0o077 == 0
    finally:
        second.close()


# --- the board over each store ----------------------------------------------------------------
# pytest-trio runs a test on the mock clock only when the test itself asks for the fixture.


@pytest.fixture
def autojump_clock(request: pytest.FixtureRequest) -> trio.testing.MockClock:
    # Redis answers over a socket, which a mock clock does not see as busy: jump only after the
    # loop has been idle a while, so a pending reply is not skipped over.
    redis = request.node.callspec.params.get("store") == "redis"
    return trio.testing.MockClock(autojump_threshold=1.0 if redis else 0)


@pytest.fixture
def board(store) -> QueueBoard:
    tokens = (f"tok{i}" for i in itertools.count())
    return QueueBoard(store, clock=trio.current_time, token=lambda: next(tokens),
                      limits=QueueLimits(max_queues_per_peer=2, max_queues=3, max_items=10))


async def test_identical_lists_are_no_ops_and_a_different_one_names_the_difference(
        board, autojump_clock):
    first = await board.submit(KEY, sealed(4), POLICY, "a")
    assert (first.created, first.total, first.carried) == (True, 4, 0)
    again = await board.submit(KEY, sealed(4), QueuePolicy(lease_ttl=5), "b")
    assert (again.created, again.total) == (False, 4)
    other = sealed(4)
    other[2] = (bytes([77]) * 32, b"other")
    with pytest.raises(ListConflict) as caught:
        await board.submit(KEY, other, POLICY, "b")
    assert (caught.value.index, caught.value.total, caught.value.envelope) == (2, 4, b"env2")
    with pytest.raises(ListConflict) as caught:
        await board.submit(KEY, sealed(5), POLICY, "b")
    assert (caught.value.index, caught.value.envelope) == (4, b"")
    assert board.stats.conflicts == 2


async def test_limits_items_size_and_queues_per_peer(board, autojump_clock):
    with pytest.raises(QueueLimitError, match="at most 10"):
        await board.submit(KEY, [(bytes([i]) * 32, b"x") for i in range(11)], POLICY, "a")
    with pytest.raises(QueueLimitError, match="larger than"):
        await board.submit(KEY, [(bytes(32), b"x" * 2000)], POLICY, "a")
    await board.submit(QueueKey(bytes([1]) * 32, 1), sealed(1), POLICY, "a")
    await board.submit(QueueKey(bytes([2]) * 32, 1), sealed(1), POLICY, "a")
    with pytest.raises(QueueLimitError, match="at most 2 queues"):
        await board.submit(QueueKey(bytes([3]) * 32, 1), sealed(1), POLICY, "a")
    await board.submit(QueueKey(bytes([3]) * 32, 1), sealed(1), POLICY, "b")
    with pytest.raises(QueueLimitError, match="holds 3 queues"):
        await board.submit(QueueKey(bytes([4]) * 32, 1), sealed(1), POLICY, "c")


async def test_unknown_queue(board, autojump_clock):
    with pytest.raises(QueueNotFoundError):
        await board.claim(KEY, "r", 0)
    with pytest.raises(QueueNotFoundError):
        await board.status(KEY)


async def test_every_item_is_completed_exactly_once_by_concurrent_workers(board, autojump_clock):
    await board.submit(KEY, sealed(6), POLICY, "a")
    ran: list[tuple[str, int]] = []

    async def worker(name: str) -> None:
        while True:
            got = await board.claim(KEY, name, wait=30)
            if isinstance(got, Snapshot):
                assert got.drained
                return
            ran.append((name, got.item.index))
            await trio.sleep(1 + got.item.index)
            assert got.item.token is not None
            await board.complete(KEY, got.item.index, got.item.token, True)

    async with trio.open_nursery() as nursery:
        for name in ("w1", "w2", "w3"):
            nursery.start_soon(worker, name)
    assert sorted(index for _, index in ran) == list(range(6))
    assert {name for name, _ in ran} == {"w1", "w2", "w3"}
    assert all(item.completions == 1 for item in await board.store.items(KEY))
    snapshot = await board.status(KEY)
    assert snapshot.drained and snapshot.counts.done == 6


async def test_a_claim_waits_while_others_hold_leases_and_gets_a_lapsed_item(board, autojump_clock):
    await board.submit(KEY, sealed(1), POLICY, "a")
    first = await board.claim(KEY, "dies", wait=0)
    assert isinstance(first, Claimed)
    start = trio.current_time()
    empty = await board.claim(KEY, "other", wait=5)
    assert isinstance(empty, Snapshot) and not empty.drained
    assert empty.holders == (("dies", 0, pytest.approx(55.0)),)
    assert trio.current_time() - start == pytest.approx(5)
    assert isinstance(await board.claim(KEY, "other", wait=30), Snapshot)  # at most 30 s
    second = await board.claim(KEY, "other", wait=30)  # waits, wakes as the lease lapses
    assert isinstance(second, Claimed) and second.item.attempts == 2
    assert trio.current_time() - start == pytest.approx(60, abs=0.1)
    assert board.stats.lapses == 1
    with pytest.raises(StaleLeaseError):
        await board.complete(KEY, 0, first.item.token or "", True)


async def test_a_dropped_connection_gives_its_items_back_at_once(board, autojump_clock):
    await board.submit(KEY, sealed(3), POLICY, "a")
    a = await board.claim(KEY, "runner-a", binding="conn-a")
    b = await board.claim(KEY, "runner-a", binding="conn-a")
    c = await board.claim(KEY, "runner-b", binding="conn-b")
    assert isinstance(a, Claimed) and isinstance(b, Claimed) and isinstance(c, Claimed)
    await board.complete(KEY, b.item.index, b.item.token or "", True, "conn-a")
    got: list[Claimed | Snapshot] = []

    async def waiter() -> None:
        got.append(await board.claim(KEY, "runner-b", wait=30, binding="conn-b"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        assert await board.release_binding("conn-a") == 1  # a; b was already complete
    assert trio.current_time() == start  # woken by the release, not by a lapse
    (taken,) = got
    assert isinstance(taken, Claimed) and taken.item.index == a.item.index
    assert board.stats.releases == 1 and board.bound_leases == 2
    assert await board.release_binding("conn-a") == 0


class _ChangeMidLook:
    """A store that lets another holder change the queue while a claim is looking at it: after
    the claim found no ready item and before it starts waiting (a Redis round trip apart)."""

    def __init__(self, inner: QueueStore) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], Awaitable[object]] | None = None

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def counts(self, key: QueueKey) -> core.QueueCounts:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            await meanwhile()
        return await self.inner.counts(key)


async def test_a_release_while_a_claim_is_looking_wakes_it(store, autojump_clock):
    # The lost wake-up: a release between the claim's look and its wait went unnoticed, and
    # the claim slept until its next poll (5 s; seen under load in CI with Redis).
    looking = _ChangeMidLook(store)
    tokens = (f"tok{i}" for i in itertools.count())
    board = QueueBoard(looking, clock=trio.current_time,  # type: ignore[arg-type]
                       token=lambda: next(tokens))
    await board.submit(KEY, sealed(1), POLICY, "a")
    held = await board.claim(KEY, "runner-a", binding="conn-a")
    assert isinstance(held, Claimed)
    looking.meanwhile = functools.partial(board.release_binding, "conn-a")
    start = trio.current_time()
    taken = await board.claim(KEY, "runner-b", wait=30, binding="conn-b")
    assert isinstance(taken, Claimed) and taken.item.index == held.item.index
    assert trio.current_time() == start


async def test_heartbeats_keep_a_lease_and_rebind_it(board, autojump_clock):
    await board.submit(KEY, sealed(1), POLICY, "a")
    got = await board.claim(KEY, "r", binding="old")
    assert isinstance(got, Claimed)
    token = got.item.token or ""
    for _ in range(5):
        await trio.sleep(40)
        item = await board.heartbeat(KEY, 0, token, binding="new")
        assert item.expires_at == pytest.approx(trio.current_time() + 60)
    assert await board.release_binding("old") == 0  # the lease moved to the new connection
    assert (await board.status(KEY)).counts.leased == 1
    done, outcome = await board.complete(KEY, 0, token, True, "new")
    assert (done.state, outcome) == ("done", "done")
    assert (await board.complete(KEY, 0, token, True))[1] == "repeat"
    assert board.stats.completions == 1


async def test_status_waits_for_the_queue_to_drain(board, autojump_clock):
    await board.submit(KEY, sealed(2), POLICY, "a")

    async def work() -> None:
        for _ in range(2):
            got = await board.claim(KEY, "w")
            assert isinstance(got, Claimed)
            await trio.sleep(3)
            await board.complete(KEY, got.item.index, got.item.token or "", True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(work)
        start = trio.current_time()
        snapshot = await board.status(KEY, wait=30)
        assert snapshot.drained and trio.current_time() - start == pytest.approx(6)


async def test_a_rerun_replays_only_what_did_not_succeed(board, autojump_clock):
    await board.submit(KEY, sealed(4), POLICY, "a")
    outcomes = {0: True, 1: False, 2: True}  # item 3 never ran (the attempt was cancelled)
    for index, ok in outcomes.items():
        got = await board.claim(KEY, "w")
        assert isinstance(got, Claimed) and got.item.index == index
        await board.complete(KEY, index, got.item.token or "", ok)
    rerun = QueueKey(KEY.queue_id, 2)
    submitted = await board.submit(rerun, sealed(4), POLICY, "b")
    assert (submitted.created, submitted.total, submitted.carried) == (True, 4, 2)
    replayed = []
    while isinstance(got := await board.claim(rerun, "w"), Claimed):
        replayed.append(got.item.index)
        await board.complete(rerun, got.item.index, got.item.token or "", True)
    assert replayed == [1, 3]
    assert got.drained and got.counts.done == 4 and got.counts.carried == 2
    # A third attempt finds everything done in one of the two before it.
    third = await board.submit(QueueKey(KEY.queue_id, 3), sealed(4), POLICY, "c")
    assert third.carried == 4
