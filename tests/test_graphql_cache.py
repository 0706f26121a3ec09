"""GraphQL through the cache, against the simulator: ``GitHubClient.graphql`` in process, and
``POST /graphql`` through two runner daemons and a hub (real libp2p, real HTTP) for fleet-wide
sharing, coalescing, mutations and the statistics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import trio
from test_metrics import REPO, in_process_fleet

from github_p2p.cache.client import GitHubClient
from github_p2p.cache.driver import fetch_upstream
from github_p2p.cache.upstream import UpstreamResponse
from github_p2p.config import ClientSettings
from github_p2p.core.effects import Fetch
from github_p2p.core.flow import FlowRequest
from github_p2p.errors import GraphQLResponseError
from github_p2p.testing.simulator import GitHubSimulator

ISSUES = """query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) {
  id issues(first: 100, states: OPEN) { totalCount nodes { number title } } } }"""
VARS = {"owner": "octo", "name": "hello"}


def graphql_records(sim: GitHubSimulator) -> int:
    return sum(1 for r in sim.records() if r.path == "/graphql")


def client(sim: GitHubSimulator, tmp_path: Path, token: str) -> GitHubClient:
    return GitHubClient.in_process(ClientSettings(api_url=sim.url, token=token, scope=REPO,
                                                  cache_dir=tmp_path / "cache"))


def test_queries_are_cached_and_mutations_invalidate(sim: GitHubSimulator,
                                                     tmp_path: Path) -> None:
    with client(sim, tmp_path, "ghp_alice") as gh, client(sim, tmp_path, "ghp_bob") as bob:
        first = gh.graphql(ISSUES, VARS)
        assert gh.graphql(ISSUES, {"name": "hello", "owner": "octo"}) == first
        assert bob.graphql(ISSUES, VARS) == first  # one answer for every token of the scope
        assert graphql_records(sim) == 1
        stats = gh.stats()
        assert (stats["graphql_calls"], stats["api_calls_made"], stats["local_hits"]) == (1, 1, 1)
        assert stats["graphql_rate_limit_remaining"] == 4999
        assert stats["rate_limit_remaining"] is None  # the REST budget was never seen

        created = gh.graphql("""mutation($input: CreateIssueInput!) { createIssue(input: $input)
            { issue { number } } }""", {"input": {"repositoryId": first["repository"]["id"],
                                                  "title": "made by a mutation"}})
        assert graphql_records(sim) == 2
        after = gh.graphql(ISSUES, VARS)  # the mutation forgot the repository's answers
        assert graphql_records(sim) == 3
        assert after["repository"]["issues"]["totalCount"] == (
            first["repository"]["issues"]["totalCount"] + 1)
        assert created["createIssue"]["issue"]["number"] in [
            n["number"] for n in after["repository"]["issues"]["nodes"]]


def test_caller_dependent_live_and_failed_queries(sim: GitHubSimulator, tmp_path: Path) -> None:
    with client(sim, tmp_path, "ghp_alice") as alice, client(sim, tmp_path, "ghp_bob") as bob:
        mine = alice.graphql("{ viewer { login } }")
        theirs = bob.graphql("{ viewer { login } }")
        assert mine != theirs and alice.graphql("{ viewer { login } }") == mine
        assert graphql_records(sim) == 2  # per token, and cached for each
        for _ in range(2):
            alice.graphql("{ rateLimit { remaining } }")
        assert graphql_records(sim) == 4  # live: never cached
        for _ in range(2):
            with pytest.raises(GraphQLResponseError, match="nope"):
                alice.graphql('{ repository(owner: "octo", name: "hello") { nope } }')
        assert graphql_records(sim) == 6  # an answer with errors is never kept


def test_rest_writes_forget_the_repositorys_graphql_answers(sim: GitHubSimulator,
                                                            tmp_path: Path) -> None:
    with client(sim, tmp_path, "ghp_alice") as gh:
        before = gh.graphql(ISSUES, VARS)
        gh.request("POST", f"/repos/{REPO}/issues", json_body={"title": "made over REST"})
        after = gh.graphql(ISSUES, VARS)
        assert graphql_records(sim) == 2
        assert after["repository"]["issues"]["totalCount"] == (
            before["repository"]["issues"]["totalCount"] + 1)


def test_graphql_goes_to_api_graphql_beside_an_enterprise_api() -> None:
    sent: list[str] = []

    def send(method: str, url: str, headers: Any, body: Any, **_: Any) -> UpstreamResponse:
        sent.append(f"{method} {url}")
        return UpstreamResponse(200, {}, b"{}", url, 1, None)  # type: ignore[arg-type]

    request = FlowRequest("POST", "/graphql", body=b"{}")
    fetch_upstream(send, "https://ghe.example/api/v3", request, Fetch("POST", {}, b"{}"), "t")
    fetch_upstream(send, "https://api.github.com", request, Fetch("POST", {}, b"{}"), "t")
    assert sent == ["POST https://ghe.example/api/graphql", "POST https://api.github.com/graphql"]


async def post(endpoint: str, body: dict[str, Any], token: str, path: str = "/graphql"
               ) -> requests.Response:
    return await trio.to_thread.run_sync(lambda: requests.post(
        endpoint + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30))


async def test_a_fleet_shares_coalesces_and_invalidates_graphql(sim: GitHubSimulator,
                                                               tmp_path: Path) -> None:
    query = {"query": ISSUES, "variables": VARS}
    async with in_process_fleet(sim, tmp_path, runners=3) as fleet:
        first, second, third = (r.endpoint or "" for r in fleet.runners)
        answers: list[requests.Response] = []

        async def ask(endpoint: str, token: str) -> None:
            answers.append(await post(endpoint, query, token))

        async with trio.open_nursery() as nursery:  # two runners miss at once
            nursery.start_soon(ask, first, "ghs_one")
            nursery.start_soon(ask, second, "ghs_two")
        assert [a.status_code for a in answers] == [200, 200]
        assert answers[0].content == answers[1].content
        assert graphql_records(sim) == 1  # one call for the fleet
        outcomes = sorted(a.headers["x-github-p2p-cache"] for a in answers)
        assert outcomes == ["hit-peer", "miss"]
        again = await post(first, query, "ghs_one", path="/api/graphql")
        assert again.headers["x-github-p2p-cache"] == "hit-local"

        before = json.loads(answers[0].content)["data"]["repository"]
        mutation = {"query": "mutation($i: CreateIssueInput!) { createIssue(input: $i) { "
                             "issue { number } } }",
                    "variables": {"i": {"repositoryId": before["id"], "title": "fleet write"}}}
        for _ in range(2):
            done = await post(second, mutation, "ghs_two")
            assert done.headers["x-github-p2p-cache"] == "bypass"  # never from the cache
        assert graphql_records(sim) == 3
        # The hub forgot the repository's answers: a runner that never asked misses...
        fresh = await post(third, query, "ghs_three")
        assert fresh.headers["x-github-p2p-cache"] == "miss"
        total = json.loads(fresh.content)["data"]["repository"]["issues"]["totalCount"]
        assert total == before["issues"]["totalCount"] + 2
        # ... and the runner that wrote forgot its own copy, and gets the new fill.
        refilled = await post(second, query, "ghs_two")
        assert refilled.headers["x-github-p2p-cache"] == "hit-peer"
        assert refilled.content == fresh.content
        runner_stats = [r.stats() for r in fleet.runners]
        assert sum(s["graphql_calls"] for s in runner_stats) == graphql_records(sim) == 4
        assert sum(s["api_calls_made"] for s in runner_stats) == len(sim.records())
