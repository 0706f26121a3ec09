"""Unit tests of cache keys, TTL policy, Link parsing and retry decisions."""

from __future__ import annotations

import pytest

from github_p2p.config import ClientSettings, resolve_secret
from github_p2p.core.cachekey import make_cache_key, resource_tags
from github_p2p.core.pagination import next_page, next_page_url, parse_link_header
from github_p2p.core.policy import TtlPolicy, load_policy
from github_p2p.core.ratelimit import RateLimit, RetrySettings, decide_retry, limits_under
from github_p2p.errors import ConfigError

SHA = "0123456789abcdef0123456789abcdef01234567"
BASE = "https://api.github.com"


# -- cache keys ------------------------------------------------------------------------------

def test_key_ignores_query_order_and_token():
    a = make_cache_key(BASE, "GET", "/repos/o/r/issues", [("state", "open"), ("page", "2")],
                       {"Authorization": "Bearer ghs_aaaa"}, "o/r")
    b = make_cache_key(BASE, "get", "/repos/o/r/issues/", [("page", "2"), ("state", "open")],
                       {"authorization": "Bearer ghs_bbbb"}, "o/r")
    assert a == b
    assert "ghs_" not in a.text


@pytest.mark.parametrize("change", [
    {"base": "https://ghe.example/api/v3"},
    {"path": "/repos/o/r/pulls"},
    {"query": [("state", "closed")]},
    {"headers": {"Accept": "application/vnd.github.raw+json"}},
    {"headers": {"X-GitHub-Api-Version": "2026-03-10"}},
    {"scope": "o/other"},
])
def test_key_changes_with_every_component(change):
    args = {"base": BASE, "path": "/repos/o/r/issues", "query": [("state", "open")],
            "headers": {}, "scope": "o/r"}
    before = make_cache_key(args["base"], "GET", args["path"], args["query"], args["headers"],
                            args["scope"])
    args.update(change)
    after = make_cache_key(args["base"], "GET", args["path"], args["query"], args["headers"],
                           args["scope"])
    assert before.text != after.text


def test_default_accept_values_share_a_key():
    a = make_cache_key(BASE, "GET", "/x", (), {"Accept": "application/json"})
    b = make_cache_key(BASE, "GET", "/x", (), {})
    assert a == b


def test_resource_tags_cover_ancestors():
    def paths(path):
        return [t.split("|")[-1] for t in resource_tags(BASE, "o/r", path)]

    assert paths("/repos/o/r/issues/5/comments") == [
        "/repos/o/r/issues/5/comments", "/repos/o/r/issues/5", "/repos/o/r/issues"]
    # Opening or closing an issue changes the repository's open_issues_count.
    assert paths("/repos/o/r/issues/5") == [
        "/repos/o/r/issues/5", "/repos/o/r/issues", "/repos/o/r"]
    assert paths("/repos/o/r/issues") == ["/repos/o/r/issues", "/repos/o/r"]
    assert paths("/repos/o/r") == ["/repos/o/r"]
    # A comment edit (the registry's heartbeat) leaves the repository document alone.
    assert "/repos/o/r" not in paths("/repos/o/r/issues/comments/77")
    key = make_cache_key(BASE, "GET", "/repos/o/r/issues", [("page", "3")], {}, "o/r")
    assert key.resource in resource_tags(BASE, "o/r", "/repos/o/r/issues/5/comments")


# -- policy ----------------------------------------------------------------------------------

def test_policy_defaults():
    p = TtlPolicy()
    assert p.ttl("/repos/o/r/pulls", [], 200) == 60
    assert p.ttl(f"/repos/o/r/commits/{SHA}", [], 200) == p.immutable_ttl
    assert p.ttl("/repos/o/r/contents/a.txt", [("ref", SHA)], 200) == p.immutable_ttl
    assert p.ttl("/repos/o/r/contents/a.txt", [("ref", "main")], 200) == 60
    assert p.ttl("/repos/o/r/missing", [], 404) == p.negative_ttl
    for status in (500, 502, 503, 403, 429, 401):
        assert p.ttl("/repos/o/r", [], status) is None
    assert p.bypass("POST", "/repos/o/r/issues")
    assert p.bypass("GET", "/rate_limit")
    assert not p.bypass("GET", "/repos/o/r")


def test_policy_yaml(tmp_path):
    f = tmp_path / "policy.yml"
    f.write_text("default_ttl: 5\nnegative_ttl: 0\nrules:\n  - pattern: '^/repos/.*/pulls'\n"
                 "    ttl: 120\n")
    p = load_policy(f)
    assert p.ttl("/repos/o/r/pulls", [], 200) == 120
    assert p.ttl("/repos/o/r/tags", [], 200) == 5
    assert p.ttl("/repos/o/r/x", [], 404) is None


@pytest.mark.parametrize("text", ["- a\n- b\n", "default_ttl: -1\n", "bogus: 1\n",
                                  "rules:\n  - pattern: '('\n    ttl: 1\n", "rules: [{ttl: 1}]\n"])
def test_bad_policy_files_are_config_errors(tmp_path, text):
    f = tmp_path / "policy.yml"
    f.write_text(text)
    with pytest.raises(ConfigError):
        load_policy(f)


# -- Link ------------------------------------------------------------------------------------

def test_link_header():
    value = ('<https://api.github.com/r?page=2&per_page=100>; rel="next", '
             '<https://api.github.com/r?page=5>; rel="last"')
    assert parse_link_header(value) == {"next": "https://api.github.com/r?page=2&per_page=100",
                                        "last": "https://api.github.com/r?page=5"}
    assert next_page_url('<https://x/?page=4>; rel="prev"') is None
    assert next_page_url(None) is None
    assert next_page_url("garbage") is None


def test_next_page_is_relative_to_the_base_url():
    link = '<https://ghe.example/api/v3/repos/o/r/issues?per_page=7&page=2>; rel="next"'
    assert next_page("https://ghe.example/api/v3", {"Link": link}) == (
        "/repos/o/r/issues", [("per_page", "7"), ("page", "2")])
    assert next_page("https://api.github.com", {"link": '<https://api.github.com/x?page=3>; '
                                                        'rel="next"'}) == ("/x", [("page", "3")])
    assert next_page("https://api.github.com", {"link": '<https://x/?page=1>; rel="prev"'}) is None
    assert next_page("https://api.github.com", {}) is None


# -- retry decisions -------------------------------------------------------------------------

S = RetrySettings(max_retries=3, backoff_base=0.5, max_wait=60, secondary_floor=60)


def test_5xx_backs_off_with_jitter_and_stops():
    d0 = decide_retry(status=502, headers={}, attempt=0, now=0, settings=S, jitter=0.0)
    d1 = decide_retry(status=502, headers={}, attempt=1, now=0, settings=S, jitter=0.999)
    assert d0.retry and d1.retry and d0.delay < d1.delay
    assert not decide_retry(status=502, headers={}, attempt=3, now=0, settings=S, jitter=0).retry
    assert decide_retry(status=None, headers={}, attempt=0, now=0, settings=S, jitter=0).retry


def test_secondary_limit_honours_retry_after():
    d = decide_retry(status=403, headers={"retry-after": "1"}, attempt=0, now=0, settings=S,
                     jitter=0.0)
    assert d.retry and d.delay == 1.0
    far = decide_retry(status=429, headers={"retry-after": "3600"}, attempt=0, now=0,
                       settings=S, jitter=0)
    assert not far.retry


def test_secondary_limit_without_retry_after_waits_a_minute():
    d = decide_retry(status=403, headers={}, attempt=0, now=0, settings=S, jitter=0,
                     body_hint="You have exceeded a secondary rate limit")
    assert d.retry and d.delay >= 60


def test_primary_limit_waits_for_reset_only_when_near():
    near = decide_retry(status=403, headers={"x-ratelimit-remaining": "0",
                                             "x-ratelimit-reset": "1010"},
                        attempt=0, now=1000, settings=S, jitter=0)
    far = decide_retry(status=403, headers={"x-ratelimit-remaining": "0",
                                            "x-ratelimit-reset": "5000"},
                       attempt=0, now=1000, settings=S, jitter=0)
    assert near.retry and 10 <= near.delay <= 12
    assert not far.retry


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status):
    assert not decide_retry(status=status, headers={}, attempt=0, now=0, settings=S,
                            jitter=0).retry


def test_rate_limit_headers():
    r = RateLimit.from_headers({"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "7",
                                "x-ratelimit-reset": "junk"})
    assert (r.limit, r.remaining, r.reset) == (1000, 7, None)


# -- settings and secrets --------------------------------------------------------------------

def test_secret_resolution():
    assert resolve_secret({"GITHUB_P2P_SECRET": "s3cret-value"}).warning is None
    fallback = resolve_secret({"GITHUB_TOKEN": "ghs_abcdefgh"})
    assert fallback.secret == "ghs_abcdefgh" and "per-job" in (fallback.warning or "")
    assert "ghs_abcdefgh" not in (fallback.warning or "")
    assert resolve_secret({}).secret is None


def test_settings_from_env_and_validation():
    s = ClientSettings.from_env({"GITHUB_API_URL": "http://127.0.0.1:1/", "GH_TOKEN": "t",
                                 "GITHUB_REPOSITORY": "o/r", "GITHUB_P2P_CACHE_DIR": "/tmp/x"})
    assert s.api_url == "http://127.0.0.1:1" and s.scope == "o/r" and str(s.cache_dir) == "/tmp/x"
    assert "token=" not in repr(s)
    with pytest.raises(ConfigError):
        ClientSettings.from_env({"GITHUB_API_URL": "ftp://x"})


def test_limits_under_a_prefix_are_named_without_it():
    limits = {"core": 1.0, "r/o/r:core": 2.0, "r/o/r:search": 3.0, "r/o/other:core": 4.0}
    assert limits_under("r/o/r:", limits) == {"core": 2.0, "search": 3.0}
    assert limits_under("", limits) == limits
