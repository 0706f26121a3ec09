"""GitHubClient against the real simulator: every count is read from the simulator's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from github_p2p import GitHubClient, GitHubHTTPError, Outcome
from github_p2p.config import ClientSettings
from github_p2p.core.ratelimit import RetrySettings
from github_p2p.errors import UpstreamUnavailableError

TOKEN = "ghs_integrationtoken0001"
REPO = "/repos/octo/hello"


def make_client(sim, tmp_path, clock=None, token=TOKEN, retry=None, cache="cache"):
    settings = ClientSettings(api_url=sim.url, token=token, scope="octo/hello",
                              cache_dir=tmp_path / cache,
                              retry=retry or RetrySettings(max_retries=3, backoff_base=0.01))
    kwargs = {"clock": clock, "sleep": clock.sleep} if clock is not None else {}
    return GitHubClient.in_process(settings, **kwargs)


def api_calls(sim, path=None):
    return [r for r in sim.records() if path is None or r.path == path]


def test_100_identical_gets_cost_one_upstream_call(sim, tmp_path):
    with make_client(sim, tmp_path) as gh:
        bodies = [gh.get(REPO) for _ in range(100)]
        stats = gh.stats()
    assert all(b == bodies[0] for b in bodies) and bodies[0]["full_name"] == "octo/hello"
    assert len(api_calls(sim)) == 1
    assert stats["requests"] == 100 and stats["local_hits"] == 99 and stats["misses"] == 1
    assert stats["api_calls_made"] == len(api_calls(sim)) == 1
    assert stats["api_calls_saved"] == 99 and stats["hit_rate"] == 0.99


def test_expired_entry_is_revalidated_with_a_free_304(sim, tmp_path, clock):
    path = "/repos/octo/hello/pulls"
    with make_client(sim, tmp_path, clock) as gh:
        first = gh.get(path)
        clock.advance(61)  # past the 60 s default TTL
        resp = gh.request("GET", path)
        assert resp.outcome is Outcome.REVALIDATED and json.loads(resp.body) == first
        clock.advance(30)
        assert gh.request("GET", path).outcome is Outcome.HIT_LOCAL  # TTL renewed by the 304
        stats = gh.stats()
    records = api_calls(sim, path)
    assert [(r.status, r.counted, r.conditional) for r in records] == [
        (200, True, False), (304, False, True)]
    assert stats["revalidations_304"] == 1 and stats["api_calls_made"] == 2


def test_another_token_revalidates_with_if_modified_since(sim, tmp_path, clock):
    # The repo resource carries Last-Modified; the other job's ETag would be useless to us.
    with make_client(sim, tmp_path, clock, token="ghs_jobA00000000") as a:
        a.get(REPO)
    clock.advance(400)
    with make_client(sim, tmp_path, clock, token="ghs_jobB00000000") as b:
        assert b.request("GET", REPO).outcome is Outcome.REVALIDATED
    second = api_calls(sim, REPO)[1]
    assert (second.status, second.counted, second.token) == (304, False, "ghs_jobB00000000")


def test_changed_resource_is_seen_after_its_ttl(sim, tmp_path, clock):
    path = "/repos/octo/hello/custom/flag"
    sim.set_resource(path, {"value": 1})
    with make_client(sim, tmp_path, clock) as gh:
        assert gh.get(path) == {"value": 1}
        sim.set_resource(path, {"value": 2})
        assert gh.get(path) == {"value": 1}  # still fresh: served from cache
        clock.advance(61)
        assert gh.get(path) == {"value": 2}
    assert [r.status for r in api_calls(sim, path)] == [200, 200]


def test_5xx_burst_is_answered_stale_and_counted(sim, tmp_path, clock):
    path = "/repos/octo/hello/releases"
    with make_client(sim, tmp_path, clock) as gh:
        original = gh.get(path)
        clock.advance(301)
        sim.fail_next(10, status=502)
        resp = gh.request("GET", path)
        stats = gh.stats()
    assert resp.outcome is Outcome.STALE and json.loads(resp.body) == original
    assert "stale" in resp.response_headers()["X-GitHub-P2P-Cache"]
    statuses = [r.status for r in api_calls(sim, path)]
    assert statuses == [200, 502, 502, 502, 502]  # first fetch + 1 try + 3 retries
    assert stats["stale_served"] == 1 and stats["api_calls_made"] == 5


def test_5xx_without_anything_cached_is_an_error_not_a_cache_entry(sim, tmp_path):
    sim.fail_next(4, status=503)
    with make_client(sim, tmp_path) as gh:
        with pytest.raises(GitHubHTTPError) as info:
            gh.get("/repos/octo/hello/pulls")
        assert info.value.status == 503
        assert gh.get("/repos/octo/hello/pulls") == gh.get("/repos/octo/hello/pulls")
    assert [r.status for r in api_calls(sim, "/repos/octo/hello/pulls")] == [503] * 4 + [200]


def test_secondary_limit_is_waited_out_not_hammered(sim, tmp_path):
    sim.secondary_limit_next(1, retry_after=1)
    with make_client(sim, tmp_path) as gh:
        start = time.monotonic()
        assert gh.get(REPO)["name"] == "hello"
        elapsed = time.monotonic() - start
    records = api_calls(sim, REPO)
    assert [r.status for r in records] == [403, 200]
    assert records[1].timestamp - records[0].timestamp >= 1.0
    assert elapsed >= 1.0


def test_primary_limit_far_away_is_not_waited_for(sim, tmp_path):
    from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

    with GitHubSimulator(SimulatorConfig(rate_limit=2)) as small:
        # A personal token has one budget for every repository.
        with make_client(small, tmp_path, token="ghp_personal0001") as gh:
            gh.get("/repos/octo/a")
            gh.get("/repos/octo/b")
            with pytest.raises(GitHubHTTPError) as info:
                gh.get("/repos/octo/c")
        assert info.value.status in (403, 429)
        assert len(small.records()) == 3  # no retry loop against an exhausted budget


def test_404_is_cached_briefly(sim, tmp_path, clock):
    with make_client(sim, tmp_path, clock) as gh:
        for _ in range(3):
            with pytest.raises(GitHubHTTPError):
                gh.get("/nope/nothing")
        clock.advance(31)
        with pytest.raises(GitHubHTTPError):
            gh.get("/nope/nothing")
    assert [r.status for r in api_calls(sim, "/nope/nothing")] == [404, 404]


def test_write_passes_through_and_invalidates(sim, tmp_path):
    path = "/repos/octo/hello/issues/1/comments"
    with make_client(sim, tmp_path) as gh:
        before = list(gh.paginate(path))
        assert list(gh.paginate(path)) == before  # cached
        created = gh.request("POST", path, json_body={"body": "hello"})
        assert created.status == 201 and created.outcome is Outcome.BYPASS
        after = list(gh.paginate(path))
    assert len(after) == len(before) + 1
    methods = [(r.method, r.path) for r in api_calls(sim, path)]
    assert methods == [("GET", path), ("POST", path), ("GET", path)]
    assert created.body and after[-1]["body"] == "hello"


def test_paginate_five_pages_returns_every_item(sim, tmp_path):
    path = "/repos/octo/hello/issues/1/comments"
    with make_client(sim, tmp_path) as gh:
        for i in range(5 * 7 - 2):
            gh.request("POST", path, json_body={"body": f"comment {i}"})
    existing = len([r for r in sim.records() if r.method == "GET"])
    env = dict(os.environ, GITHUB_API_URL=sim.url, GITHUB_TOKEN=TOKEN,
               GITHUB_REPOSITORY="octo/hello", GITHUB_P2P_CACHE_DIR=str(tmp_path / "cli"))
    env.pop("GITHUB_P2P_ENDPOINT", None)
    out = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api", "--paginate",
                          f"{path}?per_page=7"], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    # `gh api --paginate` prints the pages one after another up to gh 2.30 and joins them
    # from 2.31 on; github-p2p api prints like the gh installed here.
    items, decoder, at = [], json.JSONDecoder(), 0
    while at < len(out.stdout):
        page, at = decoder.raw_decode(out.stdout, at)
        items.extend(page)
    gets = [r for r in sim.records() if r.method == "GET"][existing:]
    assert len(items) >= 33 and len({i["id"] for i in items}) == len(items)
    assert len(gets) >= 5  # five pages, each fetched once


def test_cli_usage_errors_exit_2_without_traceback(tmp_path):
    env = dict(os.environ, GITHUB_API_URL="ftp://nowhere")
    out = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api", "/x"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "GITHUB_API_URL" in out.stderr
    out = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_unreachable_github_raises_after_bounded_retries(tmp_path, clock):
    settings = ClientSettings(api_url="http://127.0.0.1:9", token=TOKEN, scope="o/r",
                              cache_dir=tmp_path / "c", timeout=2,
                              retry=RetrySettings(max_retries=2, backoff_base=0.01))
    with GitHubClient.in_process(settings, clock=clock, sleep=clock.sleep) as gh:
        with pytest.raises(UpstreamUnavailableError):
            gh.get("/repos/o/r")
        stats = gh.stats()
    assert stats["api_calls_made"] == 3 and stats["errors"] == 1 and len(clock.sleeps) == 2


def test_head_does_not_invalidate_but_patch_does(sim, tmp_path):
    path = "/repos/octo/hello/issues/2"
    with make_client(sim, tmp_path) as gh:
        gh.get(path)
        assert gh.request("HEAD", path).outcome is Outcome.BYPASS
        assert gh.request("GET", path).outcome is Outcome.HIT_LOCAL
        assert gh.request("PATCH", path, json_body={"title": "renamed"}).status == 200
        resp = gh.request("GET", path)
    assert resp.outcome is Outcome.MISS and json.loads(resp.body)["title"] == "renamed"


def test_a_changed_check_run_is_seen_once_its_short_ttl_passed(sim, tmp_path, clock):
    """A SHA in the path does not make the check runs of a commit immutable (they were kept a
    week before; CI polls exactly these while checks run)."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    path = f"{REPO}/commits/{sha}/check-runs"
    sim.set_resource(path, {"total_count": 1, "check_runs": [{"id": 1, "status": "queued"}]})
    with make_client(sim, tmp_path, clock) as gh:
        assert gh.get(path)["check_runs"][0]["status"] == "queued"
        sim.set_resource(path, {"total_count": 1,
                                "check_runs": [{"id": 1, "status": "completed"}]})
        clock.advance(5)
        assert gh.get(path)["check_runs"][0]["status"] == "queued"  # still fresh
        clock.advance(6)  # past the 10 s of the commit-state family
        assert gh.get(path)["check_runs"][0]["status"] == "completed"
        commit = f"{REPO}/commits/{sha}"
        sim.set_resource(commit, {"sha": sha})
        gh.get(commit)
        clock.advance(6 * 24 * 3600)  # a commit by SHA never changes: still a local hit
        assert gh.request("GET", commit).outcome is Outcome.HIT_LOCAL
