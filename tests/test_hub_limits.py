"""The hub's bounds as values and trio code, without a network (``nodes/hub/limits.py``)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from github_p2p.errors import ConfigError
from github_p2p.nodes.hub.envelopes import StoredEnvelope
from github_p2p.nodes.hub.limits import ByteBudget, HubGuard, HubLimits, OverBudget
from github_p2p.p2p.messages import Entry, Error, Lease, LeaseReply, Response
from github_p2p.p2p.queue_messages import QueueClaim

MiB = 1024 * 1024
EID = bytes(range(32))


def test_a_peer_holds_at_most_its_fair_share_and_never_less_than_one_reply():
    budget = ByteBudget(total=64 * MiB, floor=9 * MiB)
    assert budget.share("a") == 32 * MiB  # alone: never more than half
    assert budget.take_now("a", 30 * MiB) and not budget.take_now("a", 3 * MiB)
    assert budget.take_now("b", 20 * MiB)
    assert budget.share("c") == 64 * MiB // 3
    assert not budget.take_now("c", 15 * MiB)  # fits the share, not what is left
    assert budget.take_now("c", 14 * MiB) and budget.used == 64 * MiB
    budget.give("a", 30 * MiB)
    assert budget.held("a") == 0 and budget.used == 34 * MiB and budget.peak == 64 * MiB
    many = ByteBudget(total=64 * MiB, floor=9 * MiB)
    for peer in "abcdefghij":
        assert many.take_now(peer, MiB)
    assert many.share("z") == 9 * MiB  # 11 peers: the floor, one largest reply


async def test_a_waiting_taker_gets_room_when_it_is_given_back():
    budget = ByteBudget(total=10, floor=5)
    assert budget.take_now("a", 5) and budget.take_now("b", 5)
    got: list[bool] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _take(budget, "c", 3, 10, got))
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        budget.give("a", 5)
    assert got == [True] and budget.held("c") == 3 and budget.waits == 1


async def test_a_taker_that_finds_no_room_in_time_is_refused(autojump_clock):
    budget = ByteBudget(total=10, floor=5)
    assert budget.take_now("a", 5) and budget.take_now("b", 5)
    got: list[bool] = []
    await _take(budget, "c", 3, 5, got)
    assert got == [False] and budget.refusals == 1 and budget.used == 10


async def _take(budget: ByteBudget, peer: str, amount: int, timeout: float,
                got: list[bool]) -> None:
    got.append(await budget.take(peer, amount, timeout))


def test_limits_are_checked():
    for kwargs in ({"max_streams_per_peer": 0}, {"frame_deadline": 0},
                   {"write_timeout": float("nan")}, {"buffer_budget": 8 * MiB}):
        with pytest.raises(ConfigError):
            HubLimits(**kwargs)  # type: ignore[arg-type]


def test_streams_are_counted_per_connection_and_per_peer():
    guard = HubGuard(HubLimits(max_streams_per_connection=2, max_streams_per_peer=3))
    first, second = object(), object()
    assert guard.open_stream("p", first) and guard.open_stream("p", first)
    assert not guard.open_stream("p", first)  # the connection's third
    assert guard.open_stream("p", second)
    assert not guard.open_stream("p", second)  # the peer's fourth
    assert guard.open_stream("q", second)
    guard.close_stream("p", first)
    assert not guard.open_stream("p", second)  # that connection is full (p and q)
    assert guard.open_stream("p", first)
    assert guard.counts["streams_refused"] == 3


def envelope(size: int) -> bytes:
    return b"e" * size


class Store:
    """Stored envelopes by id, read as the hub state reads them (asynchronously)."""

    def __init__(self, entries: dict[bytes, StoredEnvelope]) -> None:
        self.entries = entries

    async def get(self, entry_id: bytes) -> StoredEnvelope | None:
        return self.entries.get(entry_id)


def small_guard() -> HubGuard:
    """A budget of two largest replies: a lone peer's share is one of them."""
    return HubGuard(HubLimits(buffer_budget=2 * HubLimits().largest_hold))


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


async def test_a_reply_that_does_not_fit_waits_without_its_envelope_and_is_read_again(
        autojump_clock):
    guard = small_guard()
    store = Store({EID: StoredEnvelope(envelope(3 * MiB), fresh_until=2e9, stored_at=1e9)})
    big: list[Response] = [Entry(1, EID, envelope(3 * MiB), True, 0.0)]
    reply, hold = await guard.reply("p", big, store.get)
    assert big == [] and isinstance(reply, Entry) and hold.amount > 6 * MiB
    second, held = await guard.reply("p", [Entry(2, EID, b"small", True, 0.0)], store.get)
    assert held.amount > 0 and isinstance(second, Entry)  # a small one fits beside it...
    waiting: list[Response] = []

    async def third() -> None:
        late, late_hold = await guard.reply(
            "p", [Entry(3, EID, envelope(3 * MiB), True, 0.0)], store.get)
        waiting.append(late)
        late_hold.release()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        assert waiting == [] and guard.counts["replies_deferred"] == 1  # ...a big one waits
        hold.release()
    assert isinstance(waiting[0], Entry) and waiting[0].envelope == store.entries[EID].envelope
    held.release()
    assert guard.budget.used == 0


async def test_what_never_fits_becomes_an_answer_without_an_envelope(autojump_clock):
    guard = HubGuard(HubLimits(budget_wait=1.0))
    assert guard.budget.take_now("other", guard.budget.total // 2)
    assert guard.budget.take_now("p", guard.budget.share("p"))
    gone = Store({})
    entry, _ = await guard.reply("p", [Entry(1, EID, envelope(MiB), True, 0.0)], gone.get)
    assert isinstance(entry, Error) and entry.code == "busy"
    hit, _ = await guard.reply("p", [LeaseReply(2, EID, "hit", envelope(MiB), True)],
                               gone.get)
    assert isinstance(hit, LeaseReply) and hit.outcome == "timeout" and not hit.envelope
    granted, _ = await guard.reply(
        "p", [LeaseReply(3, EID, "granted", envelope(MiB), False, "tok", 30.0)], gone.get)
    assert isinstance(granted, LeaseReply) and granted.lease_token == "tok"
    assert not granted.envelope  # the stale extra dropped at once, the grant not delayed
    assert guard.counts["replies_refused"] == 2


def test_lease_waits_past_a_peers_cap_are_answered_at_once():
    guard = HubGuard(HubLimits(max_lease_waits_per_peer=2, max_lease_waits=3))
    ask = Lease(1, EID, 30.0)
    with guard.waiting("p", ask) as one, guard.waiting("p", ask) as two, \
            guard.waiting("p", ask) as three:
        assert (one.wait, two.wait, three.wait) == (30.0, 30.0, 0.0)
        with guard.waiting("q", ask) as four:
            assert four.wait == 0.0  # the hub's cap: three in progress already
    with guard.waiting("q", ask) as again:
        assert again.wait == 30.0
    assert guard.counts["lease_waits_capped"] == 2 and guard.stats()["lease_waits"] == 0
    claim = QueueClaim(8, EID, 1, "worker-1", 60.0)  # a work-queue claim waits the same way
    with guard.waiting("p", claim) as first, guard.waiting("p", claim) as second, \
            guard.waiting("p", claim) as third:
        assert (first.wait, second.wait, third.wait) == (60.0, 60.0, 0.0)


async def test_a_partial_frame_past_the_peers_share_ends_its_stream():
    guard = small_guard()
    frames = guard.frames("p")
    with trio.CancelScope() as scope:
        hook = frames.before_read(scope)
        await hook(3 * MiB)
        assert frames.in_frame and scope.deadline < float("inf")
        assert guard.budget.held("p") > 3 * MiB
        other = guard.frames("p")
        await other.before_read(scope)(3 * MiB)
        third = guard.frames("p")
        with pytest.raises(OverBudget):
            await third.before_read(scope)(3 * MiB)
        frames.settle(0)
        assert not frames.in_frame
        other.release()
    assert guard.budget.used == 0
