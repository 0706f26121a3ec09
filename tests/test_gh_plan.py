"""The gh wrapper's decisions (pure): what it serves, what it caches, what runs gh unchanged."""

from __future__ import annotations

import json
import shutil

import pytest

from github_p2p.cli.gh.apiargs import ApiArgs
from github_p2p.cli.gh.flags import Flag, parse_flags
from github_p2p.cli.gh.ghenv import api_base, gh_host, gh_repo, gh_token
from github_p2p.cli.gh.output import join_pages, jq_output, run_jq
from github_p2p.cli.gh.plan import ApiCommand, CachedRun, PassThrough, plan


def test_gh_api_command_lines_are_run_by_github_p2p() -> None:
    decided = plan(["api", "-X", "get", "/repos/o/r/releases?per_page=2", "-f", "page=2",
                    "-F", "flag=true", "-H", "Accept: application/vnd.github.raw+json",
                    "--paginate", "-q", ".[].id", "--cache", "1h"])
    assert isinstance(decided, ApiCommand) and not decided.writes
    assert decided.args == ApiArgs(
        endpoint="/repos/o/r/releases?per_page=2", method="get", method_given=True,
        raw_fields=("page=2",), typed_fields=("flag=true",),
        headers=("Accept: application/vnd.github.raw+json",), paginate=True, jq=".[].id")
    assert plan(["api", "--jq=.name", "--silent", "repos/o/r"]) == PassThrough(
        "gh refuses this command line; let it say so", writes=False)
    assert plan(["api", "repos/{owner}/{repo}/pulls"], gh_repo=("octo", "hello")) == ApiCommand(
        ApiArgs("repos/{owner}/{repo}/pulls", "GET", False))
    for argv in (["api", "repos/o/r", "--template", "{{.name}}"],
                 ["api", "https://api.github.com/repos/o/r"],
                 ["api", "-X", "GET", "search/issues", "-F", "q=@query.txt"],
                 ["api", "-X", "GET", "repos/o/r", "-f", "labels[]=bug"],
                 ["api", "graphql", "-f", "query={ viewer { login } }"],
                 ["api", "graphql", "-f", "query=query Q { a } mutation M { b }",
                  "-f", "operationName=Q"]):
        decided = plan(argv)
        assert isinstance(decided, ApiCommand) and not decided.writes, argv


@pytest.mark.parametrize("argv", [
    ["api", "repos/o/r", "--include"],          # gh prints headers github-p2p does not keep
    ["api", "repos/o/r", "--paginate", "--slurp"],
    ["api", "repos/o/r", "--verbose"],
    ["api", "repos/{owner}/{repo}"],            # needs the git remote
    ["api", "repos/o/r/branches/{branch}"],
    ["api", "repos/o/r", "--jq", ".a", "--template", "{{.a}}"],  # gh refuses it
    ["api", "-ab", "repos/o/r"],
    ["api"],
    ["pr", "list", "--json", "number", "--web"],
    ["pr", "list", "--json", "number", "--frobnicate"],
    ["pr", "list", "--draft=false", "--json", "number"],
    ["pr", "list"],                              # for humans
    ["pr", "view", "1", "2", "--json", "title"],
    ["run", "view", "--log"],
    ["auth", "status"],
    ["--version"],
])
def test_what_is_not_understood_runs_gh_unchanged_without_invalidating(argv: list[str]) -> None:
    decided = plan(argv)
    assert isinstance(decided, PassThrough) and not decided.writes


@pytest.mark.parametrize("argv", [
    ["api", "-X", "POST", "repos/o/r/issues", "-f", "title=x"],
    ["api", "repos/o/r/issues/1/comments", "-f", "body=hi"],
    ["api", "--method=DELETE", "/repos/o/r/issues/comments/5?x=1"],
    ["api", "graphql", "-f", "query=mutation{x}"],
    ["api", "graphql", "-F", "query=@mutation.graphql"],
    ["api", "graphql", "-f", "query={ not graphql"],
])
def test_gh_api_writes_are_run_by_github_p2p_too(argv: list[str]) -> None:
    decided = plan(argv)
    assert isinstance(decided, ApiCommand) and decided.writes


@pytest.mark.parametrize(("argv", "api_path"), [
    (["api", "-X", "POST", "repos/o/r/issues", "-f", "title=x", "-i"], "/repos/o/r/issues"),
    (["api", "repos/o/r/issues/1/comments", "-f", "body=hi", "--jq", ".id"],
     "/repos/o/r/issues/1/comments"),
    (["api", "--method=DELETE", "/repos/o/r/issues/comments/5?x=1", "--verbose"],
     "/repos/o/r/issues/comments/5"),
    (["api", "graphql", "-f", "query=mutation{x}", "--template", "{{.}}"], None),
    (["pr", "create", "--title", "x"], None),
    (["issue", "close", "5"], None),
    (["release", "create", "v1"], None),
    (["workflow", "run", "ci.yml"], None),
    (["extension", "exec", "something"], None),
])
def test_writes_run_gh_and_invalidate(argv: list[str], api_path: str | None) -> None:
    assert plan(argv) == PassThrough(plan(argv).reason, writes=True,  # type: ignore[union-attr]
                                     api_path=api_path)


@pytest.mark.parametrize(("argv", "family", "ttl", "repo"), [
    (["pr", "list", "-R", "o/r", "--json", "number,title", "-L", "5", "--state=open"],
     "pr list", 60, "o/r"),
    (["pr", "view", "12", "--json", "title", "-q", ".title"], "pr view", 60, None),
    (["issue", "list", "--json", "number", "-l", "bug", "-Ro/r"], "issue list", 60, "o/r"),
    (["run", "list", "--json", "status", "-w", "ci.yml", "--limit=3"], "run list", 60, None),
    (["run", "view", "123", "--json", "jobs", "--repo=o/r"], "run view", 60, "o/r"),
    (["release", "list", "--json", "tagName", "--exclude-drafts"], "release list", 300, None),
    (["repo", "view", "o/r", "--json", "name"], "repo view", 300, None),
    (["pr", "checks", "7", "--json", "state", "--required"], "pr checks", 30, None),
])
def test_read_only_json_commands_are_cached_per_family(argv: list[str], family: str,
                                                       ttl: float, repo: str | None) -> None:
    assert plan(argv) == CachedRun(family, ttl, repo)


def test_flags_parse_like_pflag() -> None:
    known = [Flag("repo", "R"), Flag("limit", "L"), Flag("draft", "d", False)]
    parsed = parse_flags(["-Ro/r", "-L=3", "--draft", "x", "--", "--not-a-flag"], known)
    assert parsed is not None
    assert parsed.flags == (("repo", "o/r"), ("limit", "3"), ("draft", "true"))
    assert parsed.positionals == ("x", "--not-a-flag")
    assert parse_flags(["--limit"], known) is None  # missing value
    assert parse_flags(["-dL", "3"], known) is None  # grouped shorthands


def test_gh_host_token_and_repo_like_gh() -> None:
    env = {"GH_TOKEN": "t1", "GH_ENTERPRISE_TOKEN": "t2", "GH_REPO": "ghe.example/octo/hello"}
    assert (gh_host(env), api_base("github.com"), gh_token(env, "github.com")) == (
        "github.com", "https://api.github.com", "t1")
    assert (api_base("ghe.example:8443"), gh_token(env, "ghe.example:8443")) == (
        "https://ghe.example:8443/api/v3", "t2")
    assert api_base("octo.ghe.com") == "https://api.octo.ghe.com"
    assert gh_token({}, "github.com") is None  # gh's stored login: the wrapper steps aside
    assert gh_repo(env) == ("octo", "hello") and gh_repo({"GH_REPO": "nope"}) is None


def test_paginated_output_like_each_gh_release() -> None:
    pages = [b'[{"a":1},{"a":2}]', b'[{"a":3}]', b"[]"]
    assert join_pages(pages, (2, 23, 0)) == b'[{"a":1},{"a":2}][{"a":3}][]'
    joined = join_pages(pages, (2, 60, 0))
    assert json.loads(joined) == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert join_pages([b'{"x":1}', b'{"x":2}'], None) == b'{"x":1}{"x":2}'


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_jq_prints_like_gh() -> None:
    jq = shutil.which("jq")
    assert jq is not None
    body = b'{"name":"r","owner":{"login":"o","id":1},"tags":["a","b"],"x":null,"f":1.5}'
    assert jq_output(run_jq(jq, ".name", body)) == b"r\n"
    assert jq_output(run_jq(jq, ".owner", body)) == b'{"id":1,"login":"o"}\n'
    assert jq_output(run_jq(jq, ".tags[]", body)) == b"a\nb\n"
    # go-gh's printing: null as an empty line, floats with two decimals, Go's JSON escapes.
    assert jq_output(run_jq(jq, '.x, .f, .owner.id, {"a": "<&>"}', body)) == (
        b'\n1.50\n1\n{"a":"\\u003c\\u0026\\u003e"}\n')
