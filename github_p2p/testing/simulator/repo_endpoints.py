"""Read-only endpoints: repositories, releases, pulls, Actions runs and runners, commits,
contents and users."""

from __future__ import annotations

from typing import Any

from github_p2p.testing.simulator import seed
from github_p2p.testing.simulator.memo import encode_json
from github_p2p.testing.simulator.router import (
    Outcome,
    Route,
    RouteContext,
    RouteError,
    error_outcome,
    login_for_token,
)

__all__ = ["repo_key", "routes"]

_RAW_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")


def repo_key(groups: dict[str, str]) -> str:
    """``owner/repo`` in lower case: GitHub names are case-insensitive."""
    return f"{groups['owner']}/{groups['repo']}".lower()


def _not_found() -> RouteError:
    return RouteError(error_outcome(404, "Not Found"))


def get_repo(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}``."""
    repo = repo_key(groups)
    modified = ctx.state.repo_modified(repo)
    open_issues = ctx.state.open_issue_count(repo)
    body = ctx.memo.get(
        ("repo", repo, open_issues, modified),
        lambda: encode_json(seed.repo_json(repo, open_issues=open_issues, updated_at=modified)),
    )
    return Outcome(200, raw=body, last_modified=modified)


def list_releases(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/releases``."""
    items = [r.body for r in seed.releases(repo_key(groups), ctx.config.release_count)]
    page, link = ctx.page(items)
    return Outcome(200, page, link=link)


def _single_release(ctx: RouteContext, groups: dict[str, str], key: str, value: Any) -> Outcome:
    for release in seed.releases(repo_key(groups), ctx.config.release_count):
        if release.body[key] == value and not (key == "prerelease" and release.body["draft"]):
            return Outcome(200, release.body, last_modified=release.modified)
    raise _not_found()


def latest_release(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/releases/latest``: newest non-prerelease, non-draft."""
    return _single_release(ctx, groups, "prerelease", False)


def release_by_tag(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/releases/tags/{tag}``."""
    return _single_release(ctx, groups, "tag_name", groups["tag"])


def release_by_id(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/releases/{release_id}``."""
    if not groups["release_id"].isdigit():
        raise _not_found()
    return _single_release(ctx, groups, "id", int(groups["release_id"]))


def list_pulls(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/pulls`` with ``state`` (open by default)."""
    state = ctx.param("state", "open")
    items = [
        p
        for p in seed.pulls(repo_key(groups), ctx.config.pull_count, ctx.config.issue_count + 1)
        if state == "all" or p["state"] == state
    ]
    page, link = ctx.page(items)
    return Outcome(200, page, link=link)


def list_runs(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/actions/runs`` with ``status``, ``branch``, ``event``."""
    items = seed.workflow_runs(repo_key(groups), ctx.config.workflow_run_count)
    status = ctx.param("status")
    if status is not None:
        items = [r for r in items if status in (r["status"], r["conclusion"])]
    for name in ("branch", "event"):
        wanted = ctx.param(name)
        if wanted is not None:
            field = "head_branch" if name == "branch" else name
            items = [r for r in items if r[field] == wanted]
    page, link = ctx.page(items)
    return Outcome(200, {"total_count": len(items), "workflow_runs": page}, link=link)


def list_runners(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/actions/runners``."""
    items = seed.runners(repo_key(groups), ctx.config.runner_count)
    page, link = ctx.page(items)
    return Outcome(200, {"total_count": len(items), "runners": page}, link=link)


def get_commit(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/commits/{ref}`` (a SHA or a branch name)."""
    result = seed.commit(repo_key(groups), groups["ref"])
    return Outcome(200, result.body, last_modified=result.modified)


def get_contents(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/contents/{path}?ref=``; every path is a file.

    ``Accept: application/vnd.github.raw`` gets the file itself, as on GitHub.
    """
    ref = ctx.param("ref") or "main"
    result, raw = seed.contents(repo_key(groups), groups["path"], ref, ctx.config.content_size)
    if any(kind in ctx.accept for kind in _RAW_TYPES):
        return Outcome(
            200,
            raw=raw,
            content_type="application/vnd.github.raw; charset=utf-8",
            last_modified=result.modified,
        )
    return Outcome(200, result.body, last_modified=result.modified)


def get_raw(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /raw/{owner}/{repo}/{ref}/{path}``: a file itself, as a GHES host (and
    raw.githubusercontent.com) serves it."""
    result, raw = seed.contents(repo_key(groups), groups["path"], groups["ref"],
                                ctx.config.content_size)
    return Outcome(200, raw=raw, content_type="text/plain; charset=utf-8",
                   last_modified=result.modified)


def get_user(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /users/{user}``: ``email`` only for authenticated callers, as GitHub does."""
    result = seed.user_json(groups["user"], authenticated=bool(ctx.token))
    return Outcome(200, result.body, last_modified=result.modified)


def get_authenticated_user(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /user``: 401 without a token, 403 for installation tokens (as on GitHub)."""
    if ctx.token and login_for_token(ctx.token).endswith("[bot]"):
        raise RouteError(error_outcome(403, "Resource not accessible by integration"))
    result = seed.user_json(ctx.actor(), authenticated=True)
    return Outcome(200, result.body, last_modified=result.modified)


def routes() -> list[Route]:
    """The read-only routes, most specific first."""
    repo = "/repos/{owner}/{repo}"
    return [
        Route.of("GET", repo, get_repo),
        Route.of("GET", f"{repo}/releases", list_releases, fixed=True),
        Route.of("GET", f"{repo}/releases/latest", latest_release, fixed=True),
        Route.of("GET", f"{repo}/releases/tags/{{tag}}", release_by_tag, fixed=True),
        Route.of("GET", f"{repo}/releases/{{release_id}}", release_by_id, fixed=True),
        Route.of("GET", f"{repo}/pulls", list_pulls, fixed=True),
        Route.of("GET", f"{repo}/actions/runs", list_runs, fixed=True),
        Route.of("GET", f"{repo}/actions/runners", list_runners, fixed=True),
        Route.of("GET", f"{repo}/commits/{{ref+}}", get_commit, fixed=True),
        Route.of("GET", f"{repo}/contents/{{path+}}", get_contents, fixed=True),
        Route.of("GET", "/raw/{owner}/{repo}/{ref}/{path+}", get_raw, fixed=True),
        Route.of("GET", "/users/{user}", get_user, fixed=True),
        Route.of("GET", "/user", get_authenticated_user),
    ]
