"""The request flow, stepped through with plain values: no disk, no network, no clock.

Each test scripts the results of the effects the flow asks for and checks what it asked, what
it answered and what it counted. Every run also checks the lease rule: a granted lease is
consumed exactly once (by the share that fills it or by a release), on every path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from github_p2p.config import token_fingerprint
from github_p2p.core.effects import (
    Answer,
    AskFleet,
    CheckLimit,
    Effect,
    Fetch,
    Fetched,
    FleetReply,
    Invalidate,
    NoteLimit,
    ReadClock,
    ReadLocal,
    Release,
    Share,
    ShareResult,
    Wait,
    WriteLocal,
)
from github_p2p.core.entry import CacheEntry
from github_p2p.core.flow import FlowRequest, FlowSettings, cache_key, request_flow
from github_p2p.core.lease import Lease, LeaseAnswer, LeaseOutcome
from github_p2p.core.stats import Outcome

API = "https://api.github.com"
NOW = 1_000_000.0
ME = token_fingerprint("ghs_me")
OTHER = token_fingerprint("ghs_other")
LEASE = Lease("lease-token", 30.0)
FLEET = FlowSettings(api_url=API, scope="o/r", fleet=True)
ALONE = FlowSettings(api_url=API, scope="o/r")


def entry(body: bytes = b'{"v":1}', *, age: float = 0, ttl: float = 60, status: int = 200,
          **extra: Any) -> CacheEntry:
    fetched = NOW - age
    return CacheEntry(status=status, headers=(("content-type", "application/json"),),
                      body=body, fetched_at=fetched, expires_at=fetched + ttl, **extra)


def get(path: str = "/repos/o/r", caller: str | None = ME, **kw: Any) -> FlowRequest:
    return FlowRequest("GET", path, caller=caller, **kw)


@dataclass
class Script:
    """Answers the flow's effects; records what it was asked."""

    local: CacheEntry | None = None
    fleet: FleetReply | None = None
    fetched: Fetched | None = None
    share: ShareResult = ShareResult.SHARED
    release: bool = True
    fail_on: type | None = None
    #: The runner's rate-limit gate: key → until.
    limits: dict[str, float] = field(default_factory=dict)
    #: Further answers GitHub gives, after ``fetched`` (a probe after a limit).
    then: list[Fetched] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)

    def __call__(self, effect: Effect) -> Any:
        self.effects.append(effect)
        if self.fail_on is not None and isinstance(effect, self.fail_on):
            raise KeyboardInterrupt("the driver was interrupted")
        if isinstance(effect, ReadClock):
            return NOW
        if isinstance(effect, ReadLocal):
            return self.local
        if isinstance(effect, AskFleet):
            assert self.fleet is not None, "the flow asked the fleet unexpectedly"
            return self.fleet
        if isinstance(effect, Fetch):
            assert self.fetched is not None, "the flow fetched unexpectedly"
            answer = self.fetched
            if self.then:
                self.fetched = self.then.pop(0)
            return answer
        if isinstance(effect, CheckLimit):
            ahead = [self.limits[k] for k in effect.keys if self.limits.get(k, 0) > NOW]
            return max(ahead) if ahead else None
        if isinstance(effect, NoteLimit):
            self.limits[effect.key] = effect.until
            return None
        if isinstance(effect, Wait):
            return None
        if isinstance(effect, WriteLocal):
            return None
        if isinstance(effect, Share):
            return self.share
        if isinstance(effect, Release):
            return self.release
        if isinstance(effect, Invalidate):
            return True
        raise AssertionError(effect)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.effects if isinstance(e, kind)]

    def check_lease_rule(self, granted: Lease | None) -> None:
        used = [e.lease for e in self.of(Share) if e.lease is not None]
        used += [e.lease for e in self.of(Release)]
        assert used == ([granted] if granted is not None else []), used


def run(request: FlowRequest, script: Script, settings: FlowSettings = FLEET) -> Answer:
    flow = request_flow(request, settings, cache_key(request, settings))
    result: Any = None
    failure: BaseException | None = None
    while True:
        try:
            effect = flow.send(result) if failure is None else flow.throw(failure)
        except StopIteration as stop:
            answer: Answer = stop.value
            break
        try:
            result, failure = script(effect), None
        except BaseException as exc:
            result, failure = None, exc
    granted = script.fleet.answer.lease if script.fleet and script.fleet.answer else None
    script.check_lease_rule(granted)
    return answer


def lease_answer(outcome: LeaseOutcome, payload: CacheEntry | None = None, *,
                 fresh: bool = False) -> FleetReply:
    lease = LEASE if outcome is LeaseOutcome.GRANTED else None
    return FleetReply(LeaseAnswer(outcome, payload, fresh, lease))


def ok(body: bytes = b'{"v":2}', status: int = 200, **headers: str) -> Fetched:
    return Fetched(status, {"content-type": "application/json", **headers}, body)


# --- outcomes ----------------------------------------------------------------------------


def test_fresh_local_entry_is_a_local_hit_and_nothing_else():
    script = Script(local=entry())
    answer = run(get(), script)
    assert answer.outcome is Outcome.HIT_LOCAL and answer.calls == 0
    assert [type(e) for e in script.effects] == [ReadClock, ReadLocal]


def test_fresh_peer_entry_is_a_peer_hit_kept_locally():
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, entry(), fresh=True))
    answer = run(get(), script)
    assert answer.outcome is Outcome.HIT_PEER and answer.body == b'{"v":1}'
    assert len(script.of(WriteLocal)) == 1 and not script.of(Fetch)
    assert "coalesced_waits" not in answer.notes


def test_a_fill_we_waited_for_counts_a_coalesced_wait():
    script = Script(fleet=lease_answer(LeaseOutcome.FILLED, entry(), fresh=True))
    assert run(get(), script).notes == ("coalesced_waits",)


def test_miss_fetches_keeps_and_shares_filling_the_lease():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(etag='"abc"'))
    answer = run(get(), script)
    assert answer.outcome is Outcome.MISS and answer.calls == 1
    (share,) = script.of(Share)
    assert share.lease == LEASE and share.fresh_ttl == 300  # the repository family
    assert share.entry.etag == '"abc"' and share.entry.etag_owner == ME
    assert share.entry.owner is None


def test_expired_local_entry_is_revalidated_with_our_own_etag():
    old = entry(age=400, ttl=300, etag='"e1"', etag_owner=ME, last_modified="Mon")
    script = Script(local=old, fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=Fetched(304, {}, b""))
    answer = run(get(), script)
    assert answer.outcome is Outcome.REVALIDATED and answer.body == old.body
    assert script.of(Fetch)[0].headers == {"If-None-Match": '"e1"'}
    assert script.of(Share)[0].entry.expires_at == NOW + 300


def test_another_tokens_etag_is_never_sent_but_last_modified_is():
    old = entry(age=400, ttl=300, etag='"e1"', etag_owner=OTHER, last_modified="Mon")
    script = Script(local=old, fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=Fetched(304, {}, b""))
    run(get(), script)
    assert script.of(Fetch)[0].headers == {"If-Modified-Since": "Mon"}


def test_server_error_serves_a_stale_entry_and_gives_the_lease_back():
    script = Script(local=entry(age=400, ttl=300), fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=Fetched(502, {}, b"bad gateway"))
    answer = run(get(), script)
    assert answer.outcome is Outcome.STALE and answer.headers["Warning"].startswith("110")
    assert not script.of(Share) and len(script.of(Release)) == 1


def test_unreachable_github_without_anything_cached_is_an_error_that_releases():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=Fetched(None, calls=4))
    answer = run(get(), script)
    assert answer.error and answer.calls == 4 and "errors" in answer.notes
    assert len(script.of(Release)) == 1


def test_bypass_passes_through_and_a_write_invalidates():
    script = Script(fetched=ok(status=201))
    answer = run(FlowRequest("POST", "/repos/o/r/issues", body=b"{}", caller=ME), script)
    assert answer.outcome is Outcome.BYPASS and answer.status == 201
    (invalidate,) = script.of(Invalidate)
    assert invalidate.resources[0].endswith("|/repos/o/r/issues")
    assert not script.of(ReadLocal) and not script.of(AskFleet)


def test_too_large_to_share_is_served_kept_locally_and_counted():
    settings = replace(FLEET, max_shared_entry=1000, max_local_entry=100_000)
    big = b'"' + b"x" * 5000 + b'"'
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(big))
    answer = run(get(), script, settings)
    assert answer.status == 200 and answer.body == big and answer.outcome is Outcome.MISS
    assert answer.notes == ("too_large_to_share",)
    assert len(script.of(WriteLocal)) == 1 and not script.of(Share)
    assert len(script.of(Release)) == 1  # the waiters fetch for themselves


def test_too_large_even_for_the_local_store_is_still_answered():
    settings = replace(FLEET, max_shared_entry=1000, max_local_entry=1000)
    big = b'"' + b"x" * 5000 + b'"'
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(big))
    answer = run(get(), script, settings)
    assert answer.body == big and not script.of(WriteLocal)


def test_waiter_that_timed_out_fetches_itself_and_shares_without_a_lease():
    script = Script(fleet=lease_answer(LeaseOutcome.TIMEOUT), fetched=ok())
    answer = run(get(), script)
    assert answer.outcome is Outcome.MISS
    assert script.of(Share)[0].lease is None and not script.of(Release)


def test_lease_lost_when_the_fleet_went_away_mid_fill():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(),
                    share=ShareResult.FAILED)
    answer = run(get(), script)
    assert answer.status == 200 and answer.outcome is Outcome.MISS
    assert answer.notes == ("fleet_errors",)
    assert not script.of(Release)  # the share consumed it; the hub drops a dead holder's


def test_unreachable_fleet_is_counted_and_github_answers():
    script = Script(fleet=FleetReply(None), fetched=ok())
    answer = run(get(), script)
    assert answer.outcome is Outcome.MISS and answer.notes[0] == "fleet_errors"


def test_an_interrupted_fetch_gives_the_lease_back_then_raises():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(), fail_on=Fetch)
    with pytest.raises(KeyboardInterrupt):
        run(get(), script)
    assert len(script.of(Release)) == 1


def test_an_interrupted_share_does_not_release_twice():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(), fail_on=Share)
    with pytest.raises(KeyboardInterrupt):
        run(get(), script)
    assert not script.of(Release)


# --- who may see what ----------------------------------------------------------------------


def test_negative_answer_is_kept_for_its_token_only_and_never_shared():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(b"{}", status=404))
    answer = run(get(), script)
    assert answer.status == 404
    (write,) = script.of(WriteLocal)
    assert write.entry.owner == ME
    assert not script.of(Share) and len(script.of(Release)) == 1


def test_another_tokens_404_is_not_served():
    theirs = entry(b"{}", status=404, owner=OTHER)
    script = Script(local=theirs, fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok())
    answer = run(get(), script)
    assert answer.status == 200 and answer.outcome is Outcome.MISS
    assert "If-None-Match" not in script.of(Fetch)[0].headers


def test_our_own_404_is_served_while_fresh():
    mine = entry(b"{}", status=404, owner=ME, ttl=30)
    answer = run(get(), Script(local=mine))
    assert answer.status == 404 and answer.outcome is Outcome.HIT_LOCAL


def test_forbidden_that_is_not_a_rate_limit_goes_to_the_caller_never_stale():
    script = Script(local=entry(age=400, ttl=300), fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=ok(b'{"message":"Resource not accessible by integration"}', 403))
    answer = run(get(), script)
    assert answer.status == 403 and answer.outcome is Outcome.MISS


def test_rate_limit_with_a_stale_entry_answers_stale_at_once_and_tells_the_fleet():
    script = Script(local=entry(age=400, ttl=300), fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=ok(b"{}", 429))
    answer = run(get(), script)
    assert answer.outcome is Outcome.STALE and answer.calls == 1
    assert script.of(Fetch)[0].retry_rate_limits is False and not script.of(Wait)
    (note,) = script.of(NoteLimit)
    assert note.key == "core" and note.shared and note.until == NOW + 60  # no retry-after


def test_without_anything_cached_a_short_limit_is_waited_out_then_probed():
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=ok(b"{}", 403, **{"retry-after": "3"}), then=[ok()])
    answer = run(get(), script)
    assert answer.status == 200 and answer.outcome is Outcome.MISS and answer.calls == 2
    assert [w.seconds for w in script.of(Wait)] == [3.0]
    assert len(script.of(Fetch)) == 2


def test_a_limit_the_fleet_knows_is_answered_stale_without_a_call():
    script = Script(local=entry(age=400, ttl=300), fleet=lease_answer(LeaseOutcome.GRANTED),
                    limits={"core": NOW + 30})
    answer = run(get(), script)
    assert answer.outcome is Outcome.STALE and answer.calls == 0 and not script.of(Fetch)


def test_a_primary_limit_far_away_is_passed_on_and_then_answered_without_calls():
    reset = str(int(NOW + 3000))
    exhausted = ok(b'{"message": "API rate limit exceeded"}', 403,
                   **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=exhausted)
    first = run(get(), script)
    assert first.status == 403 and first.calls == 1 and not script.of(Wait)
    (note,) = script.of(NoteLimit)
    assert note.key == f"core|{ME}" and not note.shared  # one token's own budget
    again = Script(fleet=lease_answer(LeaseOutcome.GRANTED), limits=script.limits)
    second = run(get(), again)
    assert second.status == 429 and second.calls == 0 and not again.of(Fetch)
    assert second.headers["x-ratelimit-remaining"] == "0"
    other = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=ok(),
                   limits=script.limits)
    assert run(get(caller=OTHER), other).status == 200  # another token's budget is its own


@pytest.mark.parametrize("path", ["/user", "/user/repos", "/installation/repositories",
                                  "/notifications", "/repos/o/r/collaborators/u/permission"])
def test_caller_dependent_families_are_per_token_and_never_reach_the_fleet(path):
    request = get(path)
    key = cache_key(request, FLEET)
    assert key is not None and not key.shared and ME in key.text
    other = cache_key(get(path, caller=OTHER), FLEET)
    assert other is not None and other.local_id != key.local_id
    script = Script(fetched=ok())
    run(request, script)
    assert not script.of(AskFleet) and not script.of(Share)


# --- entries from other runners are not taken on trust --------------------------------------


def test_a_forged_ten_year_expiry_is_capped_at_the_policy_ttl():
    forged = entry(ttl=10 * 365 * 86400)
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, forged, fresh=True))
    answer = run(get(), script)
    assert answer.outcome is Outcome.HIT_PEER
    assert answer.entry is not None and answer.entry.expires_at == NOW + 300


def test_a_forged_future_fetch_time_is_capped_at_now():
    forged = replace(entry(), fetched_at=NOW + 10_000)
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, forged, fresh=True))
    assert run(get(), script).entry.fetched_at == NOW


def test_forged_headers_are_dropped_and_off_host_links_with_them():
    forged = replace(entry(), headers=(
        ("content-type", "application/json"), ("set-cookie", "a=b"),
        ("location", "https://evil.example/"),
        ("link", '<https://evil.example/repos?page=2>; rel="next"')))
    answer = run(get(), Script(fleet=lease_answer(LeaseOutcome.HIT, forged, fresh=True)))
    assert answer.headers == {"content-type": "application/json"}
    good = replace(entry(), headers=(("link", f'<{API}/repos/o/r/x?page=2>; rel="next"'),))
    answer = run(get(), Script(fleet=lease_answer(LeaseOutcome.HIT, good, fresh=True)))
    assert "link" in answer.headers


def test_a_negative_entry_from_the_fleet_is_refused_and_counted():
    forged = entry(b"{}", status=404)
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, forged, fresh=True), fetched=ok())
    answer = run(get(), script)
    assert answer.outcome is Outcome.MISS and "integrity_failures" in answer.notes


def test_hub_claiming_fresh_for_an_expired_sealed_entry_is_not_believed():
    expired = entry(age=400, ttl=300, last_modified="Mon")
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, expired, fresh=True),
                    fetched=Fetched(304, {}, b""))
    answer = run(get(), script)
    assert answer.outcome is Outcome.REVALIDATED
    assert script.of(Fetch)[0].headers == {"If-Modified-Since": "Mon"}


def test_refused_envelopes_are_counted():
    script = Script(fleet=FleetReply(LeaseAnswer(LeaseOutcome.GRANTED, None, False, LEASE),
                                     refused=1), fetched=ok())
    assert run(get(), script).notes == ("integrity_failures",)


def test_without_a_fleet_nothing_asks_one():
    script = Script(fetched=ok())
    answer = run(get(), script, ALONE)
    assert answer.outcome is Outcome.MISS and not script.of(AskFleet)
    assert json.loads(answer.body) == {"v": 2}


def test_key_of_a_get_never_holds_the_token():
    key = cache_key(get(), FLEET)
    assert key is not None and "ghs_me" not in key.text and ME not in key.text


