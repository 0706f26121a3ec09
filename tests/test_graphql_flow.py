"""GraphQL in the request flow, stepped through with plain values (the harness of test_flow):
keys, the POST sent upstream, family TTLs, answers with errors, caller-dependent queries kept
out of the fleet, mutations that invalidate, and rate limits answered in a 200."""

from __future__ import annotations

import json
from typing import Any

from test_flow import (
    FLEET,
    LEASE,
    ME,
    NOW,
    OTHER,
    Script,
    entry,
    lease_answer,
    ok,
    run,
)

from github_p2p.core.effects import AskFleet, Fetch, Fetched, Invalidate, Share, WriteLocal
from github_p2p.core.flow import FlowRequest, FlowSettings, cache_key
from github_p2p.core.graphql_cache import GraphQLKey, graphql_tag, graphql_url
from github_p2p.core.lease import LeaseOutcome
from github_p2p.core.ratelimit import rate_limit_kind
from github_p2p.core.stats import Outcome

API = "https://api.github.com"
PULLS = ('query($o: String!, $r: String!) { repository(owner: $o, name: $r) { '
         "pullRequests(first: 5) { nodes { number } } } }")


def graphql(query: str, variables: dict[str, Any] | None = None, caller: str | None = ME,
            **headers: str) -> FlowRequest:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    return FlowRequest("POST", "/graphql", headers=headers, body=body, caller=caller)


def data(document: Any) -> Fetched:
    return ok(json.dumps(document).encode())


def test_queries_get_normalised_shared_keys_tagged_by_repository() -> None:
    one = cache_key(graphql(PULLS, {"o": "Octo", "r": "Hello"}), FLEET)
    two = cache_key(graphql(PULLS.replace(" ", "  ") + " # same", {"r": "Hello", "o": "Octo"},
                            caller=OTHER), FLEET)
    assert isinstance(one, GraphQLKey) and one == two
    assert one.shared and one.family == "pull_requests" and one.ttl == 60
    assert one.resource == graphql_tag(API, "o/r", "octo/hello")
    assert "Octo" not in one.text and "pullRequests" not in one.text  # a digest, not the query
    other_repo = cache_key(graphql(PULLS, {"o": "octo", "r": "other"}), FLEET)
    features = cache_key(graphql(PULLS, {"o": "Octo", "r": "Hello"},
                                 **{"GraphQL-Features": "merge_queue"}), FLEET)
    assert other_repo is not None and features is not None
    assert len({one.text, other_repo.text, features.text}) == 3
    multi = cache_key(graphql('{ a: repository(owner: "o", name: "a") { id } '
                              'b: repository(owner: "o", name: "b") { id } }'), FLEET)
    assert multi is not None and multi.resource == graphql_tag(API, "o/r", None)


def test_viewer_queries_are_kept_per_token_and_never_shared() -> None:
    mine = cache_key(graphql("{ viewer { login } }"), FLEET)
    theirs = cache_key(graphql("{ viewer { login } }", caller=OTHER), FLEET)
    assert mine is not None and theirs is not None and mine.text != theirs.text
    assert not mine.shared
    script = Script(fetched=data({"data": {"viewer": {"login": "me"}}}))
    answer = run(graphql("{ viewer { login } }"), script)
    assert answer.outcome is Outcome.MISS and not script.of(AskFleet) and not script.of(Share)
    assert len(script.of(WriteLocal)) == 1


def test_uncacheable_requests_pass_through_without_invalidating() -> None:
    for query in ("{ rateLimit { remaining } }", "{ broken", "subscription { x }"):
        request = graphql(query)
        assert cache_key(request, FLEET) is None
    script = Script(fetched=data({"data": {"rateLimit": {"remaining": 5}}}))
    answer = run(graphql("{ rateLimit { remaining } }"), script)
    assert answer.outcome is Outcome.BYPASS and not script.of(Invalidate)


def test_a_miss_posts_the_query_and_shares_it_for_its_family_ttl() -> None:
    request = graphql(PULLS, {"o": "octo", "r": "hello"})
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=data({"data": {"repository": None}}))
    answer = run(request, script)
    assert answer.outcome is Outcome.MISS and answer.calls == 1
    (fetch,) = script.of(Fetch)
    assert fetch.method == "POST" and fetch.body == request.body
    (share,) = script.of(Share)
    assert share.lease == LEASE and share.fresh_ttl == 60
    releases = graphql('{ repository(owner: "o", name: "r") { releases(last: 3) { nodes { '
                       "tagName } } } }")
    script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=data({"data": {}}))
    run(releases, script)
    assert script.of(Share)[0].fresh_ttl == 300


def test_a_peer_entry_is_capped_at_the_family_ttl() -> None:
    forged = entry(b'{"data":{}}', ttl=10 * 365 * 86400)
    script = Script(fleet=lease_answer(LeaseOutcome.HIT, forged, fresh=True))
    answer = run(graphql(PULLS, {"o": "o", "r": "r"}), script)
    assert answer.outcome is Outcome.HIT_PEER
    assert script.of(WriteLocal)[0].entry.expires_at == NOW + 60


def test_answers_with_errors_are_passed_on_but_never_kept() -> None:
    for body in ({"errors": [{"message": "Something went wrong"}]},
                 {"data": {"repository": None}, "errors": [{"type": "NOT_FOUND"}]}):
        script = Script(fleet=lease_answer(LeaseOutcome.GRANTED), fetched=data(body))
        answer = run(graphql(PULLS, {"o": "o", "r": "r"}), script)
        assert answer.status == 200 and json.loads(answer.body) == body
        assert not script.of(Share) and not script.of(WriteLocal)  # the lease was given back


def test_an_exhausted_graphql_budget_is_a_rate_limit_served_stale() -> None:
    headers = {"x-ratelimit-resource": "graphql", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": str(int(NOW) + 3600)}
    limited = '{"errors":[{"type":"RATE_LIMIT","message":"API rate limit already exceeded"}]}'
    assert rate_limit_kind(200, headers, limited) == "primary"
    assert rate_limit_kind(200, headers, '{"data":{}}') is None  # the last point, well spent
    old = entry(b'{"data":{"old":true}}', age=120, ttl=60)
    script = Script(local=old, fleet=lease_answer(LeaseOutcome.GRANTED),
                    fetched=Fetched(200, headers, limited.encode()))
    answer = run(graphql(PULLS, {"o": "o", "r": "r"}), script)
    assert answer.outcome is Outcome.STALE and answer.body == old.body


def test_mutations_pass_through_and_forget_their_repositories_answers() -> None:
    named = graphql('mutation { createCommitOnBranch(input: {branch: {repositoryNameWithOwner: '
                    '"Octo/Hello", branchName: "main"}, expectedHeadOid: "x"}) { commit { oid } '
                    "} }")
    assert cache_key(named, FLEET) is None
    script = Script(fetched=data({"data": {}}))
    answer = run(named, script)
    assert answer.outcome is Outcome.BYPASS
    assert script.of(Invalidate)[0].resources == (graphql_tag(API, "o/r", "octo/hello"),
                                                  graphql_tag(API, "o/r", None))
    by_id = graphql('mutation { addComment(input: {subjectId: "I_1", body: "b"}) { '
                    "clientMutationId } }")
    script = Script(fetched=data({"data": {}}))
    run(by_id, script)
    # Only an issue's id: the fleet scope's repository is assumed.
    assert script.of(Invalidate)[0].resources == (graphql_tag(API, "o/r", "o/r"),
                                                  graphql_tag(API, "o/r", None))


def test_rest_writes_forget_the_repositorys_graphql_answers_but_comments_do_not() -> None:
    script = Script(fetched=ok(status=201))
    run(FlowRequest("POST", "/repos/o/r/issues", body=b"{}", caller=ME), script)
    assert graphql_tag(API, "o/r", "o/r") in script.of(Invalidate)[0].resources
    script = Script(fetched=ok(status=201))
    run(FlowRequest("POST", "/repos/o/r/issues/1/comments", body=b"{}", caller=ME), script)
    assert all("graphql" not in r for r in script.of(Invalidate)[0].resources)


def test_graphql_url_beside_an_enterprise_api() -> None:
    assert graphql_url("https://ghe.example/api/v3/") == "https://ghe.example/api/graphql"
    assert graphql_url(API) == API + "/graphql"
    alone = FlowSettings(api_url="https://ghe.example/api/v3", scope="o/r")
    key = cache_key(graphql(PULLS, {"o": "o", "r": "r"}), alone)
    assert key is not None and key.resource.startswith("https://ghe.example/api/v3|o/r|")


def test_every_graphql_family_is_documented() -> None:
    from pathlib import Path

    from github_p2p.core.graphql import FAMILY_TTLS

    docs = (Path(__file__).resolve().parents[1] / "docs" / "freshness.md").read_text()
    for family, ttl in FAMILY_TTLS.items():
        row = next((line for line in docs.splitlines() if line.startswith(f"| `{family}` |")),
                   None)
        assert row is not None, family
        assert ("never cached" if ttl == 0 else f"| {ttl:g} s |") in row, family
