"""What to do with one ``gh`` command line (pure): serve it, cache it, or run the real ``gh``.

* :class:`ApiGet`: a ``gh api`` GET the wrapper answers itself through the github-p2p cache.
* :class:`CachedRun`: a read-only ``--json`` command (``pr list``, ``run view``, ...) whose
  output is cached for its family's TTL.
* :class:`PassThrough`: everything else, unchanged; ``writes`` says whether it may change
  GitHub (then the caches are invalidated afterwards).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from github_p2p.cli.gh.flags import Flag, Parsed, parse_flags

__all__ = ["FAMILIES", "ApiGet", "CachedRun", "Family", "PassThrough", "Plan", "plan"]


@dataclass(frozen=True)
class ApiGet:
    """A ``gh api`` GET to serve through the cache."""

    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    paginate: bool = False
    jq: str | None = None
    silent: bool = False
    hostname: str | None = None


@dataclass(frozen=True)
class CachedRun:
    """A read-only ``--json`` command whose output may be served from the cache."""

    family: str
    ttl: float
    #: The repository given with ``-R/--repo``, if any (else gh infers it from git).
    repo: str | None = None


@dataclass(frozen=True)
class PassThrough:
    """Run the real gh unchanged."""

    reason: str
    writes: bool = True
    #: For a ``gh api`` write: the API path it changes (to invalidate).
    api_path: str | None = None


Plan = ApiGet | CachedRun | PassThrough

# -- gh api ------------------------------------------------------------------------------------

_API_FLAGS = (
    Flag("method", "X"), Flag("raw-field", "f"), Flag("field", "F"), Flag("header", "H"),
    Flag("paginate", None, False), Flag("jq", "q"), Flag("silent", None, False),
    Flag("cache"), Flag("hostname"),
)
# Flags of `gh api` that change what is sent or printed in ways the wrapper does not emulate:
# --include, --template, --input, --verbose, --preview, --slurp. Unknown to the parser, they
# make the command pass through.
_PLACEHOLDER = re.compile(r"\{(owner|repo|branch)\}")


def _expand(endpoint: str, repo: tuple[str, str] | None) -> str | None:
    """Fill ``{owner}``/``{repo}`` from ``GH_REPO``; ``None`` when gh would need git."""
    if not _PLACEHOLDER.search(endpoint):
        return endpoint
    if repo is None or "{branch}" in endpoint:
        return None
    return endpoint.replace("{owner}", repo[0]).replace("{repo}", repo[1])


def _field_value(raw: str, typed: bool) -> str | None:
    """A field as the query value gh sends for a GET; ``None`` for what the wrapper does not
    do (``-F key=@file`` reads a file, ``-F`` fills placeholders)."""
    if typed and (raw.startswith("@") or _PLACEHOLDER.search(raw)):
        return None
    return raw


def _plan_api(args: Sequence[str], repo: tuple[str, str] | None) -> Plan:
    parsed = parse_flags(args, _API_FLAGS)
    if parsed is None:
        return PassThrough("a gh api flag the wrapper does not emulate", writes=False)
    if len(parsed.positionals) != 1:
        return PassThrough("gh api needs exactly one endpoint", writes=False)
    fields = [(name, value) for name, value in parsed.flags if name in ("raw-field", "field")]
    method = (parsed.last("method") or ("POST" if fields else "GET")).upper()
    endpoint = parsed.positionals[0]
    if method != "GET":
        path = _expand(endpoint, repo)
        api_path = None
        if path is not None and not path.startswith(("http:", "https:")) and path != "graphql":
            api_path = "/" + path.lstrip("/").partition("?")[0]
        return PassThrough(f"gh api {method} is a write", writes=True, api_path=api_path)
    if endpoint in ("graphql", "/graphql") or endpoint.startswith(("http:", "https:")):
        return PassThrough("GraphQL and absolute URLs go to gh", writes=False)
    expanded = _expand(endpoint, repo)
    if expanded is None:
        return PassThrough("placeholders that need the git remote", writes=False)
    path, _, inline = ("/" + expanded.lstrip("/")).partition("?")
    query = parse_qsl(inline, keep_blank_values=True)
    for name, raw in fields:
        key, eq, value = raw.partition("=")
        typed = _field_value(value, name == "field")
        if not eq or not key or "[" in key or typed is None:
            return PassThrough("a field the wrapper does not encode like gh", writes=False)
        query.append((key, typed))
    headers: list[tuple[str, str]] = []
    for raw in parsed.values("header"):
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            return PassThrough("a header gh would refuse", writes=False)
        headers.append((name.strip(), value.strip()))
    return ApiGet(path, tuple(query), tuple(headers), parsed.has("paginate"),
                  parsed.last("jq"), parsed.has("silent"), parsed.last("hostname"))


# -- read-only --json commands -----------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A read-only command: its TTL, its flags, and how many positionals it takes."""

    ttl: float
    flags: tuple[Flag, ...]
    positionals: int = 0


def _f(*specs: str) -> tuple[Flag, ...]:
    """``"name"``/``"name/s"`` take a value, ``"+name"``/``"+name/s"`` are booleans."""
    out = []
    for spec in specs:
        boolean = spec.startswith("+")
        name, _, short = spec.lstrip("+").partition("/")
        out.append(Flag(name, short or None, not boolean))
    return tuple(out)


_JSON = ("json", "jq/q", "template/t")
_REPO = ("repo/R",)

#: Read-only commands whose ``--json`` output is cached, and for how long (seconds). Runs
#: change quickly, repository metadata and releases slowly.
FAMILIES: Mapping[str, Family] = {
    "pr list": Family(60, _f(*_JSON, *_REPO, "author/A", "assignee/a", "base/B", "+draft/d",
                             "head/H", "label/l", "limit/L", "search/S", "state/s", "app")),
    "pr view": Family(60, _f(*_JSON, *_REPO, "+comments/c"), 1),
    "pr checks": Family(30, _f(*_JSON, *_REPO, "+required"), 1),
    "issue list": Family(60, _f(*_JSON, *_REPO, "app", "assignee/a", "author/A", "label/l",
                                "limit/L", "mention", "milestone/m", "search/S", "state/s")),
    "issue view": Family(60, _f(*_JSON, *_REPO, "+comments/c"), 1),
    "run list": Family(60, _f(*_JSON, *_REPO, "branch/b", "commit/c", "created", "event/e",
                              "limit/L", "status/s", "user/u", "workflow/w", "+all/a")),
    "run view": Family(60, _f(*_JSON, *_REPO, "attempt/a", "job/j", "+verbose/v"), 1),
    "release list": Family(300, _f(*_JSON, *_REPO, "+exclude-drafts", "+exclude-pre-releases",
                                   "limit/L", "order/O")),
    "release view": Family(300, _f(*_JSON, *_REPO), 1),
    "repo view": Family(300, _f(*_JSON, "branch/b"), 1),
    "repo list": Family(300, _f(*_JSON, "+archived", "+fork", "language/l", "limit/L",
                                "+no-archived", "+source", "topic", "visibility"), 1),
    "label list": Family(300, _f(*_JSON, *_REPO, "limit/L", "order/O", "search/S", "sort")),
    "workflow list": Family(300, _f(*_JSON, *_REPO, "+all/a", "limit/L")),
    "cache list": Family(60, _f(*_JSON, *_REPO, "key/k", "limit/L", "order/O", "ref/r",
                                "sort/S")),
}

#: Commands that never change anything on GitHub (no invalidation after them).
_READ_ONLY_TOP = frozenset({"--version", "version", "help", "--help", "-h", "auth", "browse",
                            "completion", "config", "alias", "search", "status"})
_READ_ONLY_VERBS = frozenset({"list", "view", "status", "diff", "checks", "watch", "download",
                              "verify"})


def _plan_json(family_name: str, family: Family, args: Sequence[str]) -> Plan:
    parsed: Parsed | None = parse_flags(args, family.flags)
    if parsed is None:
        return PassThrough(f"a {family_name} flag the wrapper does not know", writes=False)
    if not parsed.has("json"):
        return PassThrough(f"{family_name} without --json prints for humans", writes=False)
    if len(parsed.positionals) > family.positionals:
        return PassThrough(f"{family_name} takes at most {family.positionals} argument(s)",
                           writes=False)
    return CachedRun(family_name, family.ttl, parsed.last("repo"))


def plan(argv: Sequence[str], *, gh_repo: tuple[str, str] | None = None) -> Plan:
    """Decide what to do with ``gh ARGV``. ``gh_repo`` is ``GH_REPO`` as (owner, repo)."""
    if not argv:
        return PassThrough("no command", writes=False)
    if argv[0] == "api":
        return _plan_api(argv[1:], gh_repo)
    if len(argv) >= 2:
        name = f"{argv[0]} {argv[1]}"
        family = FAMILIES.get(name)
        if family is not None:
            return _plan_json(name, family, argv[2:])
        if argv[1] in _READ_ONLY_VERBS:
            return PassThrough("a read-only command the wrapper does not cache", writes=False)
    if argv[0] in _READ_ONLY_TOP:
        return PassThrough("a command that changes nothing on GitHub", writes=False)
    return PassThrough("not a read-only command the wrapper knows")
