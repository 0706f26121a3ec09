"""The GitHub simulator, driven over real HTTP with requests."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from github_p2p.testing.simulator import GitHubSimulator, SimulatorClient, SimulatorConfig
from github_p2p.testing.simulator.testing import ManualClock, seal_secret

TOKEN_A = "ghp_alice"
TOKEN_B = "ghp_bob"
REPO = "/repos/octo/hello"


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture
def sim() -> Iterator[GitHubSimulator]:
    with GitHubSimulator(SimulatorConfig()) as simulator:
        yield simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def get(
    http: requests.Session, sim: GitHubSimulator, path: str, token: str = TOKEN_A, **headers: str
) -> requests.Response:
    return http.get(sim.url + path, headers=auth(token, **headers) if token else headers)


# --- headers and validators ---------------------------------------------------------------------


def test_repo_has_github_headers(sim: GitHubSimulator, http: requests.Session) -> None:
    response = get(http, sim, REPO)
    assert response.status_code == 200
    h = response.headers
    assert h["content-type"] == "application/json; charset=utf-8"
    assert h["cache-control"] == "private, max-age=60, s-maxage=60"
    assert h["vary"] == "Accept, Authorization, Cookie, X-GitHub-OTP"
    assert h["x-github-api-version-selected"] == "2022-11-28"
    assert h["x-github-request-id"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', h["etag"])
    assert h["last-modified"].endswith(" GMT")
    assert (h["x-ratelimit-limit"], h["x-ratelimit-remaining"], h["x-ratelimit-used"]) == (
        "5000",
        "4999",
        "1",
    )
    assert h["x-ratelimit-resource"] == "core"
    assert int(h["x-ratelimit-reset"]) > time.time() + 3500
    body = response.json()
    assert body["full_name"] == "octo/hello" and body["default_branch"] == "main"


def test_etag_is_token_specific_and_304_is_free(
    sim: GitHubSimulator, http: requests.Session
) -> None:
    first = get(http, sim, REPO, TOKEN_A)
    etag = first.headers["etag"]
    again = get(http, sim, REPO, TOKEN_A, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["x-ratelimit-remaining"] == "4999"  # not spent
    other = get(http, sim, REPO, TOKEN_B, **{"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag
    assert other.json() == first.json()
    assert [(r.token, r.status, r.counted, r.conditional) for r in sim.records()] == [
        (TOKEN_A, 200, True, False),
        (TOKEN_A, 304, False, True),
        (TOKEN_B, 200, True, True),
    ]
    assert sim.upstream_count(REPO, counted_only=True) == 2


def test_if_modified_since_works_across_tokens(
    sim: GitHubSimulator, http: requests.Session
) -> None:
    last_modified = get(http, sim, REPO, TOKEN_A).headers["last-modified"]
    other = get(http, sim, REPO, TOKEN_B, **{"If-Modified-Since": last_modified})
    assert other.status_code == 304
    assert other.headers["last-modified"] == last_modified
    assert other.headers["x-ratelimit-used"] == "0"
    older = get(http, sim, REPO, TOKEN_B, **{"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200


def test_list_endpoints_have_no_last_modified(sim: GitHubSimulator, http: requests.Session) -> None:
    for path in ("/issues", "/releases", "/pulls", "/actions/runs", "/actions/runners"):
        response = get(http, sim, REPO + path)
        assert response.status_code == 200, path
        assert "last-modified" not in response.headers, path
    since_later = get(
        http, sim, REPO + "/issues", **{"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    )
    assert since_later.status_code == 200
    assert sim.records()[-1].counted
    for path in ("/releases/latest", "/commits/main", "/contents/README.md"):
        assert "last-modified" in get(http, sim, REPO + path).headers, path
    assert "last-modified" in get(http, sim, "/users/octocat").headers


def test_bodies_and_etags_agree_between_simulators(http: requests.Session) -> None:
    with GitHubSimulator() as one, GitHubSimulator() as two:
        for path in (REPO, REPO + "/issues?state=all", REPO + "/contents/a/b.txt?ref=v1"):
            a, b = get(http, one, path), get(http, two, path)
            # Bodies name resources on the server that answers, as GitHub's do.
            assert a.content.replace(one.url.encode(), b"") == b.content.replace(
                two.url.encode(), b""), path
            assert a.headers["etag"] == b.headers["etag"], path


# --- rate limits --------------------------------------------------------------------------------


def test_primary_budget_exhaustion_and_reset() -> None:
    clock = ManualClock()
    with (
        GitHubSimulator(SimulatorConfig(rate_limit=3), clock=clock) as sim,
        requests.Session() as http,
    ):
        remaining = [get(http, sim, REPO).headers["x-ratelimit-remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        refused = get(http, sim, REPO)
        assert refused.status_code == 403
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert refused.headers["x-ratelimit-used"] == "3"
        assert refused.headers["x-ratelimit-reset"] == str(int(clock() + 3600))
        assert refused.json()["message"].startswith("API rate limit exceeded for user ID")
        assert refused.json()["documentation_url"].startswith("https://docs.github.com/")
        assert not sim.records()[-1].counted
        rate = get(http, sim, "/rate_limit")
        assert rate.status_code == 200 and rate.json()["resources"]["core"]["remaining"] == 0
        assert get(http, sim, REPO, TOKEN_B).status_code == 200  # another token, another budget
        clock.advance(3600)
        assert get(http, sim, REPO).headers["x-ratelimit-remaining"] == "2"


def test_rate_limit_endpoint_is_not_counted(sim: GitHubSimulator, http: requests.Session) -> None:
    for _ in range(3):
        assert get(http, sim, "/rate_limit").headers["x-ratelimit-used"] == "0"
    assert sim.upstream_count("/rate_limit") == 3
    assert sim.upstream_count(counted_only=True) == 0


def test_installation_tokens_share_a_budget_per_repository(http: requests.Session) -> None:
    config = SimulatorConfig(installation_rate_limit=1000)
    with GitHubSimulator(config) as sim:
        used = [
            get(http, sim, REPO, token).headers["x-ratelimit-used"]
            for token in ("ghs_job1", "ghs_job2", "ghs_job3")
        ]
        assert used == ["1", "2", "3"]
        assert get(http, sim, REPO, "ghs_job1").headers["x-ratelimit-limit"] == "1000"
        assert get(http, sim, "/repos/octo/other", "ghs_job1").headers["x-ratelimit-used"] == "1"
        # A job's token keeps spending its repository's budget on repo-less paths.
        assert get(http, sim, "/rate_limit", "ghs_job2").json()["rate"]["used"] == 4
        assert get(http, sim, REPO, "ghp_person").headers["x-ratelimit-used"] == "1"
        anonymous = get(http, sim, REPO, "")
        assert anonymous.headers["x-ratelimit-limit"] == "60"
        assert anonymous.headers["cache-control"].startswith("public")


def test_secondary_limit_with_retry_after(sim: GitHubSimulator, http: requests.Session) -> None:
    sim.secondary_limit_next(2, retry_after=7, status=429)
    for _ in range(2):
        response = get(http, sim, REPO)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert "secondary rate limit" in response.json()["message"]
    assert get(http, sim, REPO).status_code == 200
    assert [r.counted for r in sim.records()] == [True, True, True]
    sim.secondary_limit_next(1)
    assert get(http, sim, REPO).status_code == 403


def test_5xx_burst_then_recovery(sim: GitHubSimulator, http: requests.Session) -> None:
    sim.fail_next(3, status=503)
    statuses = [get(http, sim, REPO).status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]
    assert [r.counted for r in sim.records()] == [False, False, False, True]
    assert "x-ratelimit-remaining" in get(http, sim, REPO).headers


# --- pagination ---------------------------------------------------------------------------------


def test_link_pagination_returns_every_item_once(http: requests.Session) -> None:
    with GitHubSimulator(SimulatorConfig(issue_count=120)) as sim:
        url: str | None = f"{sim.url}{REPO}/issues?state=all&per_page=25&direction=asc"
        numbers: list[int] = []
        pages: list[requests.Response] = []
        while url:
            response = http.get(url, headers=auth(TOKEN_A))
            pages.append(response)
            numbers += [issue["number"] for issue in response.json()]
            url = response.links.get("next", {}).get("url")
        assert len(pages) == 5
        assert numbers == list(range(1, 121))
        middle = pages[2].links
        assert set(middle) == {"prev", "next", "last", "first"}
        assert middle["last"]["url"].startswith(sim.url + REPO + "/issues?state=all&per_page=25")
        assert middle["prev"]["url"].endswith("page=2") and middle["first"]["url"].endswith(
            "page=1"
        )
        assert set(pages[4].links) == {"prev", "first"}
        assert "link" not in get(http, sim, REPO + "/issues?per_page=100&state=closed").headers


def test_issue_filters(sim: GitHubSimulator, http: requests.Session) -> None:
    every = get(http, sim, REPO + "/issues?state=all&per_page=100").json()
    opened = get(http, sim, REPO + "/issues?per_page=100").json()
    assert len(every) == 45 and 0 < len(opened) < 45
    assert all(issue["state"] == "open" for issue in opened)
    bugs = get(http, sim, REPO + "/issues?state=all&labels=bug&per_page=100").json()
    assert bugs and all("bug" in [lab["name"] for lab in issue["labels"]] for issue in bugs)
    runs = get(http, sim, REPO + "/actions/runs?per_page=10")
    assert runs.json()["total_count"] == 40 and len(runs.json()["workflow_runs"]) == 10
    assert runs.links["next"]["url"].endswith("per_page=10&page=2")


# --- resources, writes and secrets --------------------------------------------------------------


def test_set_resource_changes_body_etag_and_last_modified(
    sim: GitHubSimulator, http: requests.Session
) -> None:
    path = "/repos/octo/hello/custom/x"
    assert get(http, sim, path).status_code == 404
    sim.set_resource(path, {"v": 1})
    first = get(http, sim, path)
    sim.set_resource(path, {"v": 2})
    second = get(http, sim, path, **{"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.json() == {"v": 2}
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["last-modified"] != first.headers["last-modified"]
    stale = get(http, sim, path, TOKEN_B, **{"If-Modified-Since": first.headers["last-modified"]})
    assert stale.status_code == 200
    sim.set_resource(REPO, {"replaced": True})
    assert get(http, sim, REPO).json() == {"replaced": True}
    sim.set_resource("/lists/x", list(range(45)))
    listed = get(http, sim, "/lists/x")
    assert listed.json() == list(range(30)) and "next" in listed.links
    assert "last-modified" not in listed.headers


def test_issue_and_comment_lifecycle(sim: GitHubSimulator, http: requests.Session) -> None:
    repo_before = get(http, sim, REPO)
    created = http.post(
        sim.url + REPO + "/issues",
        headers=auth(TOKEN_A),
        json={"title": "Peer registry", "labels": ["p2p"]},
    )
    assert created.status_code == 201
    number = created.json()["number"]
    assert number > 45 and created.json()["labels"][0]["name"] == "p2p"
    repo_after = get(http, sim, REPO)
    assert repo_after.json()["open_issues_count"] == repo_before.json()["open_issues_count"] + 1
    assert repo_after.headers["etag"] != repo_before.headers["etag"]
    issue_path = f"{REPO}/issues/{number}"
    issue_etag = get(http, sim, issue_path).headers["etag"]

    comments_url = f"{sim.url}{issue_path}/comments"
    ids = []
    for index in range(250):
        response = http.post(comments_url, headers=auth("ghs_job"), json={"body": f"c{index}"})
        assert response.status_code == 201
        ids.append(response.json()["id"])
    comment = response.json()
    assert comment["user"]["login"] == "github-actions[bot]"
    assert set(comment) >= {"id", "body", "user", "created_at", "updated_at", "html_url"}
    url: str | None = comments_url + "?per_page=100"
    seen: list[int] = []
    while url:
        page = http.get(url, headers=auth(TOKEN_A))
        seen += [c["id"] for c in page.json()]
        url = page.links.get("next", {}).get("url")
    assert seen == ids
    assert get(http, sim, issue_path).headers["etag"] != issue_etag

    one = f"{sim.url}{REPO}/issues/comments/{ids[0]}"
    edited = http.patch(one, headers=auth(TOKEN_A), json={"body": "edited"})
    assert edited.status_code == 200 and edited.json()["body"] == "edited"
    assert http.get(one, headers=auth(TOKEN_B)).json()["body"] == "edited"
    assert http.delete(one, headers=auth(TOKEN_A)).status_code == 204
    assert http.get(one, headers=auth(TOKEN_A)).status_code == 404
    assert get(http, sim, issue_path).json()["comments"] == 249

    closed = http.patch(sim.url + issue_path, headers=auth(TOKEN_A), json={"state": "closed"})
    assert closed.json()["state"] == "closed" and closed.json()["closed_at"]
    assert (
        get(http, sim, REPO).json()["open_issues_count"] == repo_before.json()["open_issues_count"]
    )
    assert sim.upstream_count(f"{issue_path}/comments", method="POST", counted_only=True) == 250


def test_write_errors_like_github(sim: GitHubSimulator, http: requests.Session) -> None:
    issues = sim.url + REPO + "/issues"
    bad_json = http.post(issues, headers=auth(TOKEN_A), data=b"{nope")
    assert bad_json.status_code == 400 and bad_json.json()["message"] == "Problems parsing JSON"
    missing = http.post(issues, headers=auth(TOKEN_A), json={"body": "no title"})
    assert missing.status_code == 422 and "title" in missing.json()["message"]
    assert http.post(issues, json={"title": "anonymous"}).status_code == 401
    bad_state = http.patch(issues + "/1", headers=auth(TOKEN_A), json={"state": "gone"})
    assert bad_state.status_code == 422
    assert http.patch(issues + "/9999", headers=auth(TOKEN_A), json={}).status_code == 404
    assert get(http, sim, "/no/such/thing").json()["message"] == "Not Found"
    assert all(record.counted for record in sim.records())
    assert get(http, sim, "/user", "ghs_job").status_code == 403
    assert get(http, sim, "/user", TOKEN_A).json()["login"].startswith("user-")


def test_actions_secret_sealed_box_round_trip(sim: GitHubSimulator, http: requests.Session) -> None:
    key = get(http, sim, REPO + "/actions/secrets/public-key").json()
    assert key["key_id"] == sim.public_key[0] and len(key["key"]) == 44
    secret = sim.url + REPO + "/actions/secrets/MCP_P2P_BOOTSTRAP_PEERS"

    def put(value: str, key_id: str = key["key_id"]) -> requests.Response:
        sealed = seal_secret(key["key"], value)
        return http.put(
            secret, headers=auth(TOKEN_A), json={"encrypted_value": sealed, "key_id": key_id}
        )

    assert put("/ip4/1.2.3.4/tcp/9100/p2p/Qm1").status_code == 201
    assert put("/ip4/5.6.7.8/tcp/9100/p2p/Qm2").status_code == 204
    assert (
        sim.secret_value("octo/hello", "mcp_p2p_bootstrap_peers") == "/ip4/5.6.7.8/tcp/9100/p2p/Qm2"
    )
    metadata = http.get(secret, headers=auth(TOKEN_A)).json()
    assert set(metadata) == {"name", "created_at", "updated_at"}
    assert put("x", key_id="123").status_code == 422
    garbage = http.put(
        secret, headers=auth(TOKEN_A), json={"encrypted_value": "bm9wZQ==", "key_id": key["key_id"]}
    )
    assert garbage.status_code == 422
    assert sim.secret_value("octo/hello", "MISSING") is None


# --- records, control plane, lifecycle ----------------------------------------------------------


def test_records_and_http_control_plane(sim: GitHubSimulator, http: requests.Session) -> None:
    get(http, sim, REPO + "/issues?state=all&per_page=5", **{"If-None-Match": '"x"'})
    control = sim.url + "/_simulator"
    listed = http.get(control + "/requests").json()
    assert listed == [
        {
            "method": "GET",
            "path": REPO + "/issues",
            "query": "state=all&per_page=5",
            "token": TOKEN_A,
            "status": 200,
            "counted": True,
            "timestamp": listed[0]["timestamp"],
            "conditional": True,
            "resource": "core",
            "cost": 1,
        }
    ]
    assert http.post(control + "/resources", json={"path": "/x", "body": [1]}).status_code == 200
    assert get(http, sim, "/x").json() == [1]
    http.post(control + "/faults", json={"kind": "5xx", "count": 1, "status": 500})
    http.post(control + "/faults", json={"kind": "secondary", "count": 1, "retry_after": 3})
    assert [get(http, sim, "/x").status_code for _ in range(3)] == [500, 403, 200]
    assert http.post(control + "/faults", json={"kind": "nope"}).status_code == 400
    assert http.post(control + "/latency", json={"seconds": 0.01}).status_code == 200
    assert sim.latency == 0.01
    assert http.post(control + "/reset").status_code == 200
    assert sim.records() == []

    client = SimulatorClient(sim.url)
    client.set_resource("/y", {"ok": True})
    client.fail_next(1)
    client.set_latency(0.0)
    assert get(http, sim, "/y").status_code == 502
    assert get(http, sim, "/y").json() == {"ok": True}
    assert client.upstream_count("/y") == 2 and client.records() == sim.records()
    client.reset_records()
    assert client.records() == []
    client.close()


def test_latency_applies_to_api_requests_only(sim: GitHubSimulator, http: requests.Session) -> None:
    sim.set_latency(0.2)
    started = time.monotonic()
    get(http, sim, REPO)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    http.get(sim.url + "/_simulator/health")
    assert time.monotonic() - started < 0.15


def test_enterprise_prefix_and_head(sim: GitHubSimulator, http: requests.Session) -> None:
    response = http.get(sim.url + "/api/v3" + REPO + "/releases?per_page=2", headers=auth(TOKEN_A))
    assert response.status_code == 200
    assert response.links["next"]["url"].startswith(sim.url + "/api/v3" + REPO + "/releases?")
    assert sim.records()[-1].path == REPO + "/releases"
    head = http.head(sim.url + REPO, headers=auth(TOKEN_A))
    assert (
        head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    )


def test_contents_and_commits_are_deterministic(
    sim: GitHubSimulator, http: requests.Session
) -> None:
    sha = "a" * 40
    commit = get(http, sim, f"{REPO}/commits/{sha}").json()
    assert commit["sha"] == sha
    contents = get(http, sim, f"{REPO}/contents/docs/x.md?ref={sha}").json()
    assert contents["path"] == "docs/x.md" and contents["encoding"] == "base64"
    raw = get(
        http, sim, f"{REPO}/contents/docs/x.md?ref={sha}", Accept="application/vnd.github.raw"
    )
    assert raw.content.startswith(b"octo/hello@" + sha.encode())
    other = get(http, sim, f"{REPO}/contents/docs/y.md?ref={sha}").json()
    assert other["sha"] != contents["sha"]


def test_concurrent_requests_are_all_counted(sim: GitHubSimulator) -> None:
    def worker(index: int) -> None:
        with requests.Session() as session:
            for n in range(40):
                session.get(f"{sim.url}{REPO}/contents/f{index}-{n}", headers=auth(TOKEN_A))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sim.upstream_count(counted_only=True) == 320
    with requests.Session() as session:
        assert get(session, sim, "/rate_limit").json()["rate"]["used"] == 320


def test_stop_closes_listener_and_open_connections(http: requests.Session) -> None:
    simulator = GitHubSimulator().start()
    url, port = simulator.url, simulator.port
    assert http.get(url + REPO).status_code == 200  # leaves a pooled keep-alive connection
    started = time.monotonic()
    simulator.stop()
    assert time.monotonic() - started < 1.0
    with pytest.raises(requests.ConnectionError):
        http.get(url + REPO)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_config_is_validated() -> None:
    from github_p2p.errors import ConfigError

    bad: list[dict[str, Any]] = [
        {"port": -1},
        {"latency": -1},
        {"rate_limit": 0},
        {"per_page_default": 200},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            SimulatorConfig(**kwargs)
    with GitHubSimulator() as sim:
        with pytest.raises(ConfigError):
            sim.fail_next(1, status=404)
        with pytest.raises(ConfigError):
            sim.set_resource("relative", {})
