"""The issue-comment registry against the GitHub simulator, with 250 comments on the registry
issue: live, expired, forged, malformed and unrelated ones. Every API call is counted from the
simulator's own records."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from github_p2p.cache.client import GitHubClient
from github_p2p.config import ClientSettings
from github_p2p.errors import ConfigError, GitHubHTTPError
from github_p2p.registry import (
    HeartbeatSettings,
    IssueLocation,
    IssueRegistry,
    NodeIdentity,
    RegistryAgent,
    RegistryRecord,
    SealedRecord,
    registry_keys,
)
from github_p2p.registry.record import comment_body, peer_tag, seal_record
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

NOW = 1_800_000_000.0
REPO = "octo/hello"
ISSUE = 1
COMMENTS = f"/repos/{REPO}/issues/{ISSUE}/comments"
NODE_TOKEN = "ghp_registrynode01"
KEYS = registry_keys(bytes(range(32)))
FOREIGN = registry_keys(bytes(range(100, 132)))


@pytest.fixture
def sim(clock: Any) -> Iterator[GitHubSimulator]:
    """The simulator on the test's clock (from NOW): comments are posted when the records in
    them were issued, as readers expect (a record issued after it was posted is refused)."""
    with GitHubSimulator(SimulatorConfig(rate_limit=5000), clock=clock) as simulator:
        yield simulator


def rec(n: int, expires: float) -> RegistryRecord:
    pid = f"12D3KooWNode{n:04d}"
    role = "bootstrap" if n % 2 == 0 else "runner"
    return RegistryRecord(pid, (f"/ip4/203.0.113.{n % 200}/tcp/9100/p2p/{pid}",), role,
                          "ARM64" if n % 3 else "X64", "ubuntu-latest", NOW - 600, NOW - 600,
                          expires)


LIVE = [rec(n, NOW + 60 + n) for n in range(40)]
EXPIRED = [rec(100 + n, NOW - 1 - n) for n in range(30)]


def the_250_comments() -> list[str]:
    """40 live + 30 expired sealed records, 60 forged, 20 malformed, 100 unrelated."""
    bodies = [comment_body(seal_record(KEYS, r)) for r in LIVE + EXPIRED]
    bodies += [comment_body(seal_record(FOREIGN, rec(200 + n, NOW + 600))) for n in range(20)]
    for n in range(20):  # a live record copied under another node's marker
        stolen = seal_record(KEYS, LIVE[n]).envelope
        bodies.append(comment_body(SealedRecord(peer_tag(KEYS, f"12D3KooWThief{n}"), stolen)))
    for n in range(20):  # a record whose ciphertext was edited
        sealed = seal_record(KEYS, rec(400 + n, NOW + 600))
        edited = bytearray(sealed.envelope)
        edited[30 + n] ^= 0x55
        bodies.append(comment_body(SealedRecord(sealed.tag, bytes(edited))))
    tag = "c" * 32
    malformed = [
        f"<!-- github-p2p:peer:{tag} -->",
        f"<!-- github-p2p:peer:{tag} -->\n<!-- github-p2p:record:v1:bm90IHNlYWxlZA== -->",
        f"<!-- github-p2p:peer:{tag} -->\n<!-- github-p2p:record:v2:AAAA -->",
        "<!-- github-p2p:peer:not-hex -->\n<!-- github-p2p:record:v1:AAAA -->",
        f"I pasted this: <!-- github-p2p:peer:{tag} --> twice <!-- github-p2p:peer:{tag} -->",
    ]
    bodies += [malformed[n % len(malformed)] for n in range(20)]
    bodies += [f"Comment {n}: looks good to me" for n in range(100)]
    random.Random(250).shuffle(bodies)
    assert len(bodies) == 250
    return bodies


@pytest.fixture
def crowded(sim: GitHubSimulator) -> Iterator[GitHubSimulator]:
    """The simulator with the 250 comments on issue 1, and no recorded requests."""
    with requests.Session() as http:
        for body in the_250_comments():
            resp = http.post(sim.url + COMMENTS, json={"body": body},
                             headers={"Authorization": "Bearer ghp_somebodyelse"})
            assert resp.status_code == 201
    sim.reset_records()
    yield sim


def client(sim: GitHubSimulator) -> GitHubClient:
    return GitHubClient.in_process(ClientSettings(api_url=sim.url, token=NODE_TOKEN,
                                                  scope=REPO))


def registry(sim: GitHubSimulator) -> IssueRegistry:
    return IssueRegistry(client(sim), IssueLocation(REPO, ISSUE), KEYS, clock=lambda: NOW,
                         owns_client=True)


def calls(sim: GitHubSimulator) -> list[tuple[str, str, str]]:
    """The node's requests, as (method, path, query), oldest first."""
    return [(r.method, r.path, r.query) for r in sim.records() if r.token == NODE_TOKEN]


PAGES = [("GET", COMMENTS, "per_page=100"), ("GET", COMMENTS, "per_page=100&page=2"),
         ("GET", COMMENTS, "per_page=100&page=3")]


def test_every_live_record_is_found_and_nothing_forged_is_accepted(
        crowded: GitHubSimulator) -> None:
    reader = registry(crowded)
    listing = reader.scan(NOW)
    assert listing.live == tuple(sorted(LIVE, key=lambda r: r.peer_id))
    assert listing.counts() == {"entries": 250, "live": 40, "expired": 30, "duplicates": 0,
                                "withdrawals": 0, "forged": 60, "malformed": 20, "unrelated": 100}
    assert sorted(f.record.peer_id for f in listing.expired) == sorted(
        r.peer_id for r in EXPIRED)
    # All pages, not only the first 100 comments; and every call appears in the statistics.
    assert calls(crowded) == PAGES
    stats = reader.client.stats()
    assert stats["requests"] == reader.counters.get("requests") == 3
    assert stats["api_calls_made"] == reader.counters.get("api_calls") == 3
    reader.close()


def identity(n: int, role: str) -> NodeIdentity:
    pid = f"12D3KooWSelf{n:04d}"
    return NodeIdentity(pid, (f"/ip4/198.51.100.{n}/tcp/9100/p2p/{pid}",), role, "X64",
                        f"runner-{n}", NOW)


def test_a_heartbeat_costs_one_read_pass_and_one_write(crowded: GitHubSimulator) -> None:
    node = registry(crowded)
    agent = RegistryAgent(node, identity(1, "runner"), HeartbeatSettings(interval=600),
                          clock=lambda: NOW)
    costs = []
    for _ in range(3):
        crowded.reset_records()
        beat = agent.beat()
        assert beat.error is None and beat.published
        costs.append(calls(crowded))
        assert beat.api_calls == beat.requests == len(costs[-1])
    # The first beat learns there is no comment of ours yet and adds one; later beats
    # update it in place: 3 pages + 1 write, always.
    assert costs[0][:3] == PAGES and costs[0][3] == ("POST", COMMENTS, "")
    comment_id = node.scan(NOW).locators(identity(1, "runner").peer_id)
    patch = ("PATCH", f"/repos/{REPO}/issues/comments/{comment_id[0]}", "")
    assert costs[1] == costs[2] == [*PAGES, patch]
    assert [len(c) for c in costs] == [4, 4, 4]
    crowded.reset_records()
    assert agent.withdraw() == 1
    # Withdrawing costs what a heartbeat's write does: the comment becomes the withdrawal.
    assert calls(crowded) == [patch]
    after = registry(crowded).scan(NOW)
    assert after.entries == 251 and after.withdrawals == 1 and len(after.live) == 40


def test_the_bootstrap_node_prunes_expired_records_a_bounded_batch_per_beat(
        crowded: GitHubSimulator) -> None:
    hub = RegistryAgent(registry(crowded), identity(2, "bootstrap"),
                        HeartbeatSettings(interval=600, prune=True, max_prune=20),
                        clock=lambda: NOW)
    deletes = []
    for _ in range(3):
        crowded.reset_records()
        beat = hub.beat()
        mine = calls(crowded)
        deletes.append(sum(1 for method, _, _ in mine if method == "DELETE"))
        assert beat.pruned == deletes[-1] and len(mine) == 3 + 1 + deletes[-1]
    assert deletes == [20, 10, 0]
    after = registry(crowded).scan(NOW)
    assert after.counts() == {"entries": 221, "live": 41, "expired": 0, "duplicates": 0,
                              "withdrawals": 0, "forged": 60, "malformed": 20, "unrelated": 100}
    assert hub.stats()["registry_pruned"] == 30


def test_cached_reads_are_shared_and_revalidated_for_free(crowded: GitHubSimulator,
                                                          tmp_path: Path, clock: Any) -> None:
    def reader() -> IssueRegistry:
        settings = ClientSettings(api_url=crowded.url, token=NODE_TOKEN, scope=REPO,
                                  cache_dir=tmp_path / "cache")
        return IssueRegistry(GitHubClient.in_process(settings, clock=clock),
                             IssueLocation(REPO, ISSUE), KEYS, owns_client=True)

    first, second = reader(), reader()
    assert len(first.scan(NOW).live) == 40 and len(calls(crowded)) == 3
    assert len(second.scan(NOW).live) == 40 and len(calls(crowded)) == 3  # cached
    assert second.client.stats()["local_hits"] == 3
    clock.advance(61)
    crowded.reset_records()
    assert len(second.scan(NOW).live) == 40
    assert [(r.status, r.conditional, r.counted) for r in crowded.records()] == [
        (304, True, False)] * 3  # no rate-limit cost
    first.close()
    second.close()


def test_the_issue_is_found_by_label_and_title_or_created(sim: GitHubSimulator) -> None:
    location = IssueLocation(REPO)
    made = IssueRegistry(client(sim), location, KEYS, owns_client=True)
    number = made.issue_number()
    assert [(m, p) for m, p, _ in calls(sim)] == [("GET", f"/repos/{REPO}/issues"),
                                                  ("POST", f"/repos/{REPO}/issues")]
    sim.reset_records()
    found = IssueRegistry(client(sim), location, KEYS, owns_client=True)
    assert found.issue_number() == number
    assert [(m, p) for m, p, _ in calls(sim)] == [("GET", f"/repos/{REPO}/issues")]
    found.publish(rec(1, NOW + 60))
    assert [r.peer_id for r in made.list_live(NOW)] == [rec(1, NOW).peer_id]
    made.close()
    found.close()
    with pytest.raises(ConfigError, match="no open issue"):
        IssueRegistry(client(sim), IssueLocation("octo/other", create=False), KEYS
                      ).issue_number()
    anonymous = GitHubClient.in_process(ClientSettings(api_url=sim.url, scope="octo/third"))
    with pytest.raises(GitHubHTTPError) as refused:
        IssueRegistry(anonymous, IssueLocation("octo/third"), KEYS).issue_number()
    assert refused.value.status == 401
