"""The work queue's pure state machine (core/queue.py) and sealing (core/queueseal.py)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from github_p2p.core import queue as core
from github_p2p.core.keys import derive_fleet_keys
from github_p2p.core.queue import ItemRecord, QueueCounts, QueueKey, QueueLimits, QueuePolicy
from github_p2p.core.queueseal import FleetSealer, PlainSealer, QueueRef, check_item
from github_p2p.errors import (
    ConfigError,
    ForeignKeyError,
    QueueLimitError,
    StaleLeaseError,
    WrongEntryIdError,
)

POLICY = QueuePolicy(lease_ttl=60, max_attempts=3)
D = [bytes([i]) * 32 for i in range(8)]


def ready(index: int = 0) -> ItemRecord:
    return ItemRecord(index, D[index], b"sealed")


def leased(item: ItemRecord | None = None, token: str = "t1", now: float = 100.0,
           policy: QueuePolicy = POLICY) -> ItemRecord:
    return core.claim(item or ready(), holder="r1", token=token, now=now, policy=policy)


def test_claim_leases_with_token_expiry_and_counts_an_attempt():
    item = leased()
    assert (item.state, item.token, item.holder, item.attempts) == ("leased", "t1", "r1", 1)
    assert item.expires_at == 160.0 and not item.reported
    with pytest.raises(ValueError):
        core.claim(item, holder="r2", token="t2", now=101, policy=POLICY)


def test_complete_is_checked_by_token_and_idempotent():
    item = leased()
    done, outcome = core.complete(item, "t1", True, 110, POLICY)
    assert (done.state, outcome, done.completions) == ("done", "done", 1)
    again, outcome = core.complete(done, "t1", True, 111, POLICY)
    assert (again, outcome) == (done, "repeat")
    # A repeat that says otherwise changes nothing either: the first report stands.
    assert core.complete(done, "t1", False, 112, POLICY) == (done, "repeat")
    with pytest.raises(StaleLeaseError, match="already completed by another holder"):
        core.complete(done, "other", True, 113, POLICY)


def test_a_stale_holder_is_refused_with_the_reason():
    item = core.lapse(leased(), 200, POLICY)  # ran out without a heartbeat
    taken = core.claim(item, holder="r2", token="t2", now=201, policy=POLICY)
    with pytest.raises(StaleLeaseError, match="held by another lease now"):
        core.complete(taken, "t1", True, 202, POLICY)
    with pytest.raises(StaleLeaseError, match="held by another lease"):
        core.renew(taken, "t1", 202, POLICY)
    finished, _ = core.complete(taken, "t2", True, 203, POLICY)
    with pytest.raises(StaleLeaseError, match="already completed"):
        core.complete(finished, "t1", True, 204, POLICY)


def test_a_late_report_is_taken_while_nobody_claimed_the_item_again():
    lapsed = core.lapse(leased(), 161, POLICY)
    assert (lapsed.state, lapsed.token) == ("ready", "t1")
    done, outcome = core.complete(lapsed, "t1", True, 170, POLICY)
    assert (done.state, outcome) == ("done", "done")


def test_heartbeat_extends_and_revives_a_lapsed_lease_nobody_took():
    item = leased()
    renewed = core.renew(item, "t1", 150, POLICY)
    assert renewed.expires_at == 210 and renewed.attempts == 1
    assert not core.lapsed(renewed, 200) and core.lapsed(renewed, 210)
    back = core.lapse(renewed, 300, POLICY)
    assert back.state == "ready"
    revived = core.renew(back, "t1", 301, POLICY)  # e.g. the runner was cut off by a hub restart
    assert (revived.state, revived.attempts, revived.expires_at) == ("leased", 1, 361)


def test_attempts_are_capped_by_lapses_and_releases():
    policy = QueuePolicy(lease_ttl=10, max_attempts=2)
    item = leased(policy=policy)
    item = core.lapse(item, 500, policy)
    assert item.state == "ready"
    item = core.claim(item, holder="r2", token="t2", now=501, policy=policy)
    assert core.release(item, "wrong", 502, policy) == item  # not that holder's lease
    item = core.release(item, "t2", 502, policy)
    assert (item.state, item.attempts) == ("failed", 2)  # stops coming back
    with pytest.raises(StaleLeaseError):
        core.renew(item, "t2", 503, policy)


def test_failed_reports_end_the_item_unless_retries_are_asked_for():
    failed, outcome = core.complete(leased(), "t1", False, 110, POLICY)
    assert (failed.state, outcome) == ("failed", "failed")
    retrying = QueuePolicy(max_attempts=2, retry_failed=True)
    item, outcome = core.complete(leased(policy=retrying), "t1", False, 110, retrying)
    assert (item.state, outcome) == ("ready", "retry")
    assert core.complete(item, "t1", False, 111, retrying) == (item, "repeat")
    item = core.claim(item, holder="r2", token="t2", now=112, policy=retrying)
    item, outcome = core.complete(item, "t2", False, 113, retrying)
    assert (item.state, outcome, item.completions) == ("failed", "failed", 2)


def test_lapse_leaves_anything_but_an_expired_lease_alone():
    assert core.lapse(ready(), 1e12, POLICY) == ready()
    item = leased()
    assert core.lapse(item, 159.9, POLICY) is item


def test_new_items_carry_what_an_earlier_attempt_finished():
    items = core.new_items([(D[0], b"a"), (D[1], b"b"), (D[2], b"c")], done_before={D[1]},
                           now=5)
    assert [(i.index, i.state, i.carried) for i in items] == [
        (0, "ready", False), (1, "done", True), (2, "ready", False)]
    counts = core.count(items)
    assert counts == QueueCounts(ready=2, done=1, carried=1) and counts.total == 3
    with pytest.raises(StaleLeaseError, match="earlier attempt"):
        core.complete(items[1], "any", True, 6, POLICY)


def test_first_difference():
    assert core.first_difference(D[:3], D[:3]) is None
    assert core.first_difference(D[:3], [D[0], D[5], D[2]]) == 1
    assert core.first_difference(D[:3], D[:4]) == 3
    assert core.first_difference(D[:3], D[:1]) == 1
    assert core.first_difference([], []) is None


def test_counts_and_next_expiry():
    items = [leased(ready(0), now=10), leased(ready(1), "t", now=5), ready(2)]
    assert core.count(items) == QueueCounts(ready=1, leased=2)
    assert not core.count(items).drained
    assert core.next_expiry(items) == 65
    assert core.next_expiry([ready()]) is None
    assert QueueCounts(done=2, failed=1).drained


@pytest.mark.parametrize("kwargs", [{"lease_ttl": 0}, {"lease_ttl": float("nan")},
                                    {"max_attempts": 0}, {"max_attempts": True},
                                    {"retry_failed": 1}])
def test_policy_bounds(kwargs):
    with pytest.raises(ConfigError):
        QueuePolicy(**kwargs)


def test_limits_and_keys_are_validated():
    with pytest.raises(ConfigError):
        QueueLimits(max_items=0)
    with pytest.raises(ConfigError):
        QueueKey(b"short", 1)
    with pytest.raises(ConfigError):
        QueueKey(D[0], 0)


# --- a random walk keeps the invariants ---------------------------------------------------------

_ops = st.lists(st.tuples(st.sampled_from(["claim", "renew", "ok", "fail", "lapse", "release"]),
                          st.sampled_from(["t1", "t2", "t3"]), st.floats(0, 200)),
                max_size=30)


@settings(max_examples=300, deadline=None)
@given(_ops, st.booleans())
def test_random_transitions_keep_the_invariants(ops, retry):
    policy = QueuePolicy(lease_ttl=30, max_attempts=3, retry_failed=retry)
    item, now, finals = ready(), 0.0, 0
    for op, token, step in ops:
        now += step
        before = item
        try:
            if op == "claim" and item.state == "ready":
                item = core.claim(item, holder="r", token=token, now=now, policy=policy)
            elif op == "renew":
                item = core.renew(item, token, now, policy)
            elif op in ("ok", "fail"):
                item, outcome = core.complete(item, token, op == "ok", now, policy)
                finals += outcome in ("done", "failed")
            elif op == "lapse":
                item = core.lapse(item, now, policy)
            elif op == "release":
                item = core.release(item, token, now, policy)
        except StaleLeaseError:
            assert item == before  # a refusal changes nothing
        assert item.attempts <= policy.max_attempts
        assert item.state != "leased" or item.token is not None
        assert finals <= 1  # at most one final report per item, whatever happens
        if before.state in ("done",):
            assert item == before  # done is final
    assert dataclasses.replace(item) == item


# --- sealing ----------------------------------------------------------------------------------

KEYS = derive_fleet_keys("queue-secret-0001", "octo/hello", iterations=1000)
OTHER = derive_fleet_keys("queue-secret-0002", "octo/hello", iterations=1000)
REF = QueueRef("tests", "123", 1)


def test_fleet_ids_are_stable_keyed_and_shared_by_attempts():
    sealer = FleetSealer(KEYS)
    key = sealer.key(REF)
    assert key == sealer.key(QueueRef("tests", "123", 1))
    assert key.queue_id == sealer.key(QueueRef("tests", "123", 2)).queue_id  # re-runs meet
    assert key.attempt == 1 and sealer.key(QueueRef("tests", "123", 2)).attempt == 2
    assert key.queue_id != sealer.key(QueueRef("tests", "124", 1)).queue_id
    assert key.queue_id != sealer.key(QueueRef("other", "123", 1)).queue_id
    assert key.queue_id != FleetSealer(OTHER).key(REF).queue_id  # keyed: no guessing names
    assert sealer.digest(REF, "a") == sealer.digest(REF, "a") != sealer.digest(REF, "b")
    assert sealer.digest(REF, "a") != FleetSealer(OTHER).digest(REF, "a")


def test_items_are_sealed_to_their_queue_and_slot():
    sealer = FleetSealer(KEYS)
    envelope = sealer.seal(REF, 3, "tests/test_x.py::test_ü")
    assert b"test_x" not in envelope
    assert sealer.open(REF, 3, envelope) == "tests/test_x.py::test_ü"
    with pytest.raises(WrongEntryIdError):
        sealer.open(REF, 4, envelope)  # moved to another slot by the hub
    with pytest.raises(WrongEntryIdError):
        sealer.open(QueueRef("other", "123", 1), 3, envelope)
    with pytest.raises(ForeignKeyError):
        FleetSealer(OTHER).open(REF, 3, envelope)


def test_plain_sealer_round_trips():
    sealer = PlainSealer("octo/hello")
    assert sealer.open(REF, 0, sealer.seal(REF, 0, "x y")) == "x y"
    assert sealer.key(REF).queue_id != PlainSealer("octo/other").key(REF).queue_id


@pytest.mark.parametrize("bad", ["", "a\nb", "tab\there", "\x00", 5])
def test_items_must_be_one_line_of_text(bad):
    with pytest.raises(ConfigError):
        check_item(bad, QueueLimits())


def test_item_size_is_bounded():
    check_item("x" * 1024, QueueLimits())
    with pytest.raises(QueueLimitError, match="limit is 1024"):
        check_item("é" * 513, QueueLimits())


@pytest.mark.parametrize("kwargs", [{"name": ""}, {"name": "a\nb"}, {"name": "x" * 129},
                                    {"name": "n", "run_id": ""}, {"name": "n", "attempt": 0},
                                    {"name": "n", "attempt": "1"}])
def test_queue_refs_are_validated(kwargs):
    with pytest.raises(ConfigError):
        QueueRef(**kwargs)
