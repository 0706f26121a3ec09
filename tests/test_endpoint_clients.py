"""Real clients through a runner's endpoint (real daemons, a real hub, the simulator).

PyGithub follows the absolute URLs GitHub puts in bodies and ``Link`` headers and refuses any
whose host or port differs from its base URL, so these tests fail unless the endpoint rewrites
them on the way out. Counts come from the simulator's records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from github import Auth, Github

from github_p2p.testing.localfleet import LocalFleet
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

TOKEN = "ghs_pygithubclient0001"
REPO = "octo/hello"


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator(SimulatorConfig(rate_limit=5000, release_count=75)) as simulator:
        yield simulator


@pytest.fixture
def fleet(sim, tmp_path) -> Iterator[LocalFleet]:
    with LocalFleet(sim.url, workdir=tmp_path, repository=REPO) as local:
        local.start_hub()
        local.start_peer()
        local.start_peer()
        yield local


def read_with_pygithub(endpoint: str) -> tuple[dict[str, str], list[str]]:
    gh = Github(base_url=endpoint, auth=Auth.Token(TOKEN), per_page=30, retry=None)
    try:
        repo = gh.get_repo(REPO)
        facts = {"full_name": repo.full_name, "url": repo.url}
        tags = [release.tag_name for release in repo.get_releases()]
        return facts, tags
    finally:
        gh.close()


def test_pygithub_reads_and_pages_through_the_fleet(sim, fleet):
    first, second = fleet.peers
    facts, tags = read_with_pygithub(first.endpoint)
    assert facts["full_name"] == REPO
    # The body's absolute URL was rewritten to the endpoint PyGithub called.
    assert facts["url"] == f"{first.endpoint}/repos/{REPO}"
    assert len(tags) == 75 and len(set(tags)) == 75
    again = read_with_pygithub(second.endpoint)
    assert again[1] == tags and again[0]["url"] == f"{second.endpoint}/repos/{REPO}"
    # One call per unique page for the whole fleet: the repository and three release pages.
    pages = sorted((r.path, r.query) for r in sim.records())
    assert len(pages) == len(set(pages)) == 4, pages
    made = sum(requests.get(p.endpoint + "/_p2p/stats", timeout=10).json()["api_calls_made"]
               for p in fleet.peers)
    assert made == 4


def test_stored_entries_keep_the_upstream_urls(sim, fleet):
    first, second = fleet.peers
    body = requests.get(f"{first.endpoint}/api/v3/repos/{REPO}", timeout=30,
                        headers={"Authorization": f"Bearer {TOKEN}"}).json()
    # Through the GHES-style prefix, URLs point back at the prefix.
    assert body["url"] == f"{first.endpoint}/api/v3/repos/{REPO}"
    # The second runner gets the shared entry and rewrites it to its own base.
    shared = requests.get(f"{second.endpoint}/repos/{REPO}", timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert shared.headers["X-GitHub-P2P-Cache"] == "hit-peer"
    assert shared.json()["url"] == f"{second.endpoint}/repos/{REPO}"
    assert len(sim.records()) == 1


def test_api_v3_prefix_is_the_root_and_links_stay_under_it(sim, fleet):
    endpoint = fleet.peers[0].endpoint
    answer = requests.get(f"{endpoint}/api/v3/repos/{REPO}/releases", timeout=30,
                          params={"per_page": 30},
                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and len(answer.json()) == 30
    assert f"<{endpoint}/api/v3/repos/{REPO}/releases?" in answer.headers["Link"]
    plain = requests.get(f"{endpoint}/repos/{REPO}/releases", timeout=30,
                         params={"per_page": 30}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert plain.headers["X-GitHub-P2P-Cache"] == "hit-local"  # the same resource
    assert f"<{endpoint}/repos/{REPO}/releases?" in plain.headers["Link"]


def test_a_five_mib_answer_through_a_fleet_daemon(sim, fleet):
    content = "y" * (5 * 1024 * 1024)
    sim.set_resource(f"/repos/{REPO}/contents/huge.json", {"content": content})
    first, second = fleet.peers
    for peer in (first, second):
        answer = requests.get(f"{peer.endpoint}/repos/{REPO}/contents/huge.json", timeout=60,
                              headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        assert json.loads(answer.content)["content"] == content
    stats = requests.get(first.endpoint + "/_p2p/stats", timeout=10).json()
    assert stats["too_large_to_share"] == 1 and stats["errors"] == 0
    again = requests.get(f"{first.endpoint}/repos/{REPO}/contents/huge.json", timeout=60,
                         headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.headers["X-GitHub-P2P-Cache"] == "hit-local"


def test_github_mcp_server_paths_raw_and_graphql(sim, fleet):
    """What GitHub's MCP server asks a GHES-style host (GITHUB_HOST=http://127.0.0.1:PORT):
    REST under /api/v3 (above), GraphQL at /api/graphql and raw files at /raw/..."""
    endpoint = fleet.peers[0].endpoint
    auth = {"Authorization": f"Bearer {TOKEN}"}
    raw = requests.get(f"{endpoint}/raw/octo/hello/main/docs/guide.md", headers=auth,
                       timeout=30)
    assert raw.status_code == 200 and raw.headers["X-GitHub-P2P-Cache"] == "bypass"
    direct = requests.get(f"{sim.url}/repos/octo/hello/contents/docs/guide.md",
                          params={"ref": "main"}, timeout=30,
                          headers={**auth, "Accept": "application/vnd.github.raw"})
    assert raw.content == direct.content and raw.content
    query = {"query": "query { repository(owner: \"octo\", name: \"hello\") { nameWithOwner } }"}
    first = requests.post(f"{endpoint}/api/graphql", json=query, headers=auth, timeout=30)
    again = requests.post(f"{endpoint}/api/graphql", json=query, headers=auth, timeout=30)
    assert first.json()["data"]["repository"]["nameWithOwner"] == "octo/hello"
    assert (first.headers["X-GitHub-P2P-Cache"], again.headers["X-GitHub-P2P-Cache"]) == (
        "miss", "hit-local")
    assert [r.path for r in sim.records() if r.path == "/graphql"] == ["/graphql"]
