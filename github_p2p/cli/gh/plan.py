"""What to do with one ``gh`` command line (pure): serve it, cache it, or run the real ``gh``.

* :class:`ApiCommand`: a ``gh api`` command line the wrapper runs itself, through the
  github-p2p cache, with gh's output (github-p2p's one ``gh api`` implementation).
* :class:`CachedRun`: a read-only ``--json`` command (``pr list``, ``run view``, ...) whose
  output is cached for its family's TTL.
* :class:`PassThrough`: everything else, unchanged; ``writes`` says whether it may change
  GitHub (then the caches are invalidated afterwards).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from github_p2p.cli.gh.apiargs import ApiArgs, ApiUsageError, parse_api_args
from github_p2p.cli.gh.flags import Flag, Parsed, parse_flags
from github_p2p.core.graphql import parse_request
from github_p2p.errors import GraphQLRequestError

__all__ = ["FAMILIES", "ApiCommand", "CachedRun", "Family", "PassThrough", "Plan", "plan"]


@dataclass(frozen=True)
class ApiCommand:
    """A ``gh api`` command line to run through the cache."""

    args: ApiArgs
    #: It may change GitHub: a REST call other than GET, or a GraphQL mutation.
    writes: bool = False


@dataclass(frozen=True)
class CachedRun:
    """A read-only ``--json`` command whose output may be served from the cache."""

    family: str
    ttl: float
    #: The repository given with ``-R/--repo``, if any (else gh infers it from git).
    repo: str | None = None
    #: The output depends on who asks (``@me``, ``viewer*`` fields): never shared.
    private: bool = False


@dataclass(frozen=True)
class PassThrough:
    """Run the real gh unchanged."""

    reason: str
    writes: bool = True
    #: For a ``gh api`` write: the API path it changes (to invalidate).
    api_path: str | None = None


Plan = ApiCommand | CachedRun | PassThrough

# -- gh api ------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(owner|repo|branch)\}|:(owner|repo|branch)\b")
_WRITE_FLAGS = ("-f", "-F", "--field", "--raw-field", "--input")


def _graphql_writes(args: ApiArgs) -> bool:
    """A GraphQL call writes unless its query is plainly a query (``-F query=@file`` is not
    read here, so it counts as a possible write)."""
    query = next((f.partition("=")[2] for f in (*args.raw_fields, *args.typed_fields)
                  if f.startswith("query=")), None)
    if query is None or (query.startswith("@") and any(
            f.startswith("query=") for f in args.typed_fields)):
        return True
    name = next((f.partition("=")[2] for f in (*args.raw_fields, *args.typed_fields)
                 if f.startswith("operationName=")), None)
    try:
        return not parse_request({"query": query, "operationName": name}).is_query
    except GraphQLRequestError:
        return True


def _rough_method(argv: Sequence[str]) -> str:
    """The method of a command line the strict parser refused (for invalidation only)."""
    for i, arg in enumerate(argv):
        for flag in ("-X", "--method"):
            if arg == flag and i + 1 < len(argv):
                return argv[i + 1].upper()
            if arg.startswith(flag + "=") or (flag == "-X" and arg.startswith("-X") and
                                              len(arg) > 2):
                return arg.split("=", 1)[-1].removeprefix("-X").upper()
    wrote = any(a in _WRITE_FLAGS or a.startswith(tuple(f + "=" for f in _WRITE_FLAGS))
                for a in argv)
    return "POST" if wrote else "GET"


def _api_path(endpoint: str) -> str | None:
    if endpoint in ("graphql", "/graphql") or "://" in endpoint or _PLACEHOLDER.search(endpoint):
        return None
    return "/" + endpoint.lstrip("/").partition("?")[0]


def _plan_api(argv: Sequence[str], repo: tuple[str, str] | None) -> Plan:
    endpoint = next((a for a in argv if not a.startswith("-")), "")
    try:
        args = parse_api_args(argv)
    except ApiUsageError:
        return PassThrough("gh refuses this command line; let it say so", writes=False)
    if args is None:
        writes = _rough_method(argv) != "GET"
        return PassThrough("a gh api flag the wrapper does not emulate", writes=writes,
                           api_path=_api_path(endpoint) if writes else None)
    method = args.method.upper() if args.method_given else (
        "POST" if args.raw_fields or args.typed_fields or args.input_file else "GET")
    writes = _graphql_writes(args) if args.is_graphql else method != "GET"
    api_path = None if args.is_graphql else _api_path(args.endpoint)
    if args.include:
        return PassThrough("gh prints every header it received", writes, api_path)
    if writes and (args.jq or args.template or args.input_file):
        # Only a failure before anything is sent may hand a write to gh; keep writes simple.
        return PassThrough("a write with output the wrapper does not format", True, api_path)
    needs = " ".join([args.endpoint, *args.typed_fields])
    if "{branch}" in needs or ":branch" in needs or (repo is None and _PLACEHOLDER.search(needs)):
        return PassThrough("placeholders that need the git remote", writes, api_path)
    return ApiCommand(args, writes)


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
    fields = [f.strip() for value in parsed.values("json") for f in value.split(",")]
    private = any("@me" in value for _, value in parsed.flags) or any(
        f.startswith("viewer") for f in fields)
    return CachedRun(family_name, family.ttl, parsed.last("repo"), private)


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
