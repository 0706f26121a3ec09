"""Pure parts of the simulator: pagination, validators, auth parsing, budgets, state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from nacl.public import PrivateKey

from github_p2p.testing.simulator.actions_secrets import SecretVault
from github_p2p.testing.simulator.conditional import http_date, is_not_modified, token_etag
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.pagination import paginate
from github_p2p.testing.simulator.ratelimit import RateLimiter
from github_p2p.testing.simulator.service import bearer_token
from github_p2p.testing.simulator.state import SimulatorState, later


@given(
    total=st.integers(min_value=0, max_value=400),
    per_page=st.integers(min_value=1, max_value=100),
)
def test_pages_cover_every_item_exactly_once(total: int, per_page: int) -> None:
    items = list(range(total))
    seen: list[int] = []
    page = 1
    while True:
        params = [("per_page", str(per_page)), ("page", str(page))]
        chunk, link = paginate(items, params, "http://x/l", per_page_default=30, per_page_max=100)
        seen += chunk
        if link is None or 'rel="next"' not in link:
            break
        page += 1
    assert seen == items


def test_link_keeps_other_params_in_place() -> None:
    params = [("state", "all"), ("page", "2"), ("per_page", "10")]
    _, link = paginate(list(range(35)), params, "http://h/i", per_page_default=30, per_page_max=100)
    assert link == (
        '<http://h/i?state=all&page=1&per_page=10>; rel="prev", '
        '<http://h/i?state=all&page=3&per_page=10>; rel="next", '
        '<http://h/i?state=all&page=4&per_page=10>; rel="last", '
        '<http://h/i?state=all&page=1&per_page=10>; rel="first"'
    )
    chunk, _ = paginate(
        list(range(300)), [("per_page", "500")], "u", per_page_default=30, per_page_max=100
    )
    assert len(chunk) == 100
    chunk, link = paginate([1, 2], [("per_page", "x")], "u", per_page_default=30, per_page_max=100)
    assert chunk == [1, 2] and link is None


def test_conditional_rules() -> None:
    etag = token_etag("a", b"{}")
    assert etag != token_etag("b", b"{}") and etag.startswith('W/"')
    assert is_not_modified(etag, None, etag, None)
    assert is_not_modified(f'"zzz", {etag[2:]}', None, etag, None)
    assert is_not_modified("*", None, etag, None)
    assert not is_not_modified('"other"', http_date(2_000_000_000), etag, 1)  # INM decides alone
    assert is_not_modified(None, http_date(1000), etag, 1000)
    assert not is_not_modified(None, http_date(999), etag, 1000)
    assert not is_not_modified(None, http_date(1000), etag, None)  # lists: no Last-Modified
    assert not is_not_modified(None, "garbage", etag, 1000)


def test_bearer_token_forms() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("token abc") == "abc"
    assert bearer_token("BEARER  abc ") == "abc"
    assert bearer_token("Basic abc") == ""
    assert bearer_token("") == ""


def test_rate_limiter_windows() -> None:
    limiter = RateLimiter(3600)
    budget = limiter.budget_for(
        "ghs_x", "o/r", "1.2.3.4", user_limit=5000, installation_limit=2, anonymous_limit=60
    )
    assert limiter.try_consume(budget, 100.0)[0]
    assert limiter.try_consume(budget, 200.0)[1].remaining == 0
    spent, status = limiter.try_consume(budget, 300.0)
    assert not spent and status.reset == 3700
    assert limiter.try_consume(budget, 3700.0)[1].used == 1
    same_repo = limiter.budget_for(
        "ghs_y", None, "", user_limit=1, installation_limit=2, anonymous_limit=1
    )
    assert same_repo.key.kind == "token"  # a token never seen with a repository


def test_changes_always_move_last_modified_forward() -> None:
    assert later(100, 50) == 101 and later(100, 500) == 500
    state = SimulatorState(SimulatorConfig(issue_count=3), SecretVault(PrivateKey.generate()))
    first = state.set_resource("/x", 1, 1000)
    second = state.set_resource("/x", 2, 1000)
    assert second.modified > first.modified
    issue = state.create_issue("o/r", title="t", body=None, labels=(), author="me", now=1000)
    assert issue.number == 3 + SimulatorConfig().pull_count + 1
    comment = state.add_comment("o/r", issue.number, body="b", author="me", now=1000)
    assert comment is not None
    assert state.issues("o/r")[issue.number].updated_at > issue.updated_at
    assert state.comment("o/other", comment.comment_id) is None
    assert state.add_comment("o/r", 999, body="b", author="me", now=1000) is None
