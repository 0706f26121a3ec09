"""Issues and issue comments: the read and write endpoints the peer registry relies on."""

from __future__ import annotations

from typing import Any

from github_p2p.testing.simulator.entities import Issue, comment_json, issue_json
from github_p2p.testing.simulator.memo import encode_json
from github_p2p.testing.simulator.repo_endpoints import repo_key
from github_p2p.testing.simulator.router import (
    Outcome,
    Route,
    RouteContext,
    RouteError,
    error_outcome,
    invalid,
)
from github_p2p.testing.simulator.state import IssueChanges

__all__ = ["routes"]


def _not_found() -> RouteError:
    return RouteError(error_outcome(404, "Not Found"))


def _number(groups: dict[str, str], name: str) -> int:
    value = groups[name]
    if not value.isdigit():
        raise _not_found()
    return int(value)


def _labels(value: Any) -> tuple[str, ...]:
    # GitHub takes label names or label objects with a name.
    if not isinstance(value, list):
        raise invalid("For 'properties/labels', it is not an array.")
    names: list[str] = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name:
            raise invalid("For 'items', it is not a string.")
        if name not in names:
            names.append(name)
    return tuple(names)


def _text(data: dict[str, Any], field: str, *, required: bool) -> str | None:
    if field not in data:
        if required:
            raise invalid(f'"{field}" wasn\'t supplied.')
        return None
    value = data[field]
    if not isinstance(value, str) or (required and not value):
        raise invalid(f"For 'properties/{field}', {_quoted(value)} is not a string.")
    return value


def _quoted(value: Any) -> str:
    """How GitHub quotes an offending value in a validation message."""
    return "nil" if value is None else repr(value)


def _issue_bytes(ctx: RouteContext, repo: str, issue: Issue) -> bytes:
    return ctx.memo.get((repo, issue), lambda: encode_json(issue_json(repo, issue)))


def list_issues(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/issues`` with ``state``, ``labels``, ``sort``, ``direction``."""
    state = ctx.param("state", "open")
    wanted = [name.strip() for name in (ctx.param("labels") or "").split(",") if name.strip()]
    items: list[Issue] = [
        issue
        for issue in ctx.state.issues(repo_key(groups)).values()
        if (state == "all" or issue.state == state) and all(n in issue.labels for n in wanted)
    ]
    sort_key = "updated_at" if ctx.param("sort") == "updated" else "created_at"
    items.sort(
        key=lambda i: (getattr(i, sort_key), i.number),
        reverse=ctx.param("direction", "desc") != "asc",
    )
    repo = repo_key(groups)
    return ctx.json_page(items, lambda issue: _issue_bytes(ctx, repo, issue))


def create_issue(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``POST /repos/{owner}/{repo}/issues`` (201)."""
    author = ctx.actor()
    data = ctx.json_object()
    title = _text(data, "title", required=True)
    body = data.get("body")
    if body is not None and not isinstance(body, str):
        raise invalid(f"For 'properties/body', {_quoted(body)} is not a string.")
    labels = _labels(data["labels"]) if "labels" in data else ()
    repo = repo_key(groups)
    issue = ctx.state.create_issue(
        repo, title=title or "", body=body, labels=labels, author=author, now=ctx.now
    )
    return Outcome(201, issue_json(repo, issue))


def get_issue(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/issues/{number}``."""
    repo = repo_key(groups)
    issue = ctx.state.issues(repo).get(_number(groups, "number"))
    if issue is None:
        raise _not_found()
    return Outcome(200, issue_json(repo, issue), last_modified=issue.updated_at)


def update_issue(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``PATCH /repos/{owner}/{repo}/issues/{number}``: title, body, state, labels."""
    ctx.actor()
    data = ctx.json_object()
    number = _number(groups, "number")
    state = data.get("state")
    if state is not None and state not in ("open", "closed"):
        raise invalid(f"For 'properties/state', {_quoted(state)} is not one of open, closed.")
    body = data.get("body")
    if body is not None and not isinstance(body, str):
        raise invalid(f"For 'properties/body', {_quoted(body)} is not a string.")
    changes = IssueChanges(
        title=_text(data, "title", required=False),
        body=body,
        body_given="body" in data,
        state=state,
        labels=_labels(data["labels"]) if "labels" in data else None,
    )
    repo = repo_key(groups)
    issue = ctx.state.update_issue(repo, number, changes, ctx.now)
    if issue is None:
        raise _not_found()
    return Outcome(200, issue_json(repo, issue))


def list_comments(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/issues/{number}/comments``, oldest first."""
    comments = ctx.state.comments_of(repo_key(groups), _number(groups, "number"))
    if comments is None:
        raise _not_found()
    return ctx.json_page(comments, lambda c: ctx.memo.get(c, lambda: encode_json(comment_json(c))))


def create_comment(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``POST /repos/{owner}/{repo}/issues/{number}/comments`` (201)."""
    author = ctx.actor()
    body = _text(ctx.json_object(), "body", required=True)
    comment = ctx.state.add_comment(
        repo_key(groups), _number(groups, "number"), body=body or "", author=author, now=ctx.now
    )
    if comment is None:
        raise _not_found()
    return Outcome(201, comment_json(comment))


def get_comment(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``GET /repos/{owner}/{repo}/issues/comments/{comment_id}``."""
    comment = ctx.state.comment(repo_key(groups), _number(groups, "comment_id"))
    if comment is None:
        raise _not_found()
    return Outcome(200, comment_json(comment), last_modified=comment.updated_at)


def update_comment(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}``."""
    ctx.actor()
    body = _text(ctx.json_object(), "body", required=True)
    comment = ctx.state.edit_comment(
        repo_key(groups), _number(groups, "comment_id"), body or "", ctx.now
    )
    if comment is None:
        raise _not_found()
    return Outcome(200, comment_json(comment))


def delete_comment(ctx: RouteContext, groups: dict[str, str]) -> Outcome:
    """``DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}`` (204)."""
    ctx.actor()
    if not ctx.state.delete_comment(repo_key(groups), _number(groups, "comment_id"), ctx.now):
        raise _not_found()
    return Outcome(204)


def routes() -> list[Route]:
    """Issue and comment routes; ``issues/comments/...`` before ``issues/{number}``."""
    issues = "/repos/{owner}/{repo}/issues"
    comment = f"{issues}/comments/{{comment_id}}"
    return [
        Route.of("GET", issues, list_issues),
        Route.of("POST", issues, create_issue),
        Route.of("GET", comment, get_comment),
        Route.of("PATCH", comment, update_comment),
        Route.of("DELETE", comment, delete_comment),
        Route.of("GET", f"{issues}/{{number}}", get_issue),
        Route.of("PATCH", f"{issues}/{{number}}", update_issue),
        Route.of("GET", f"{issues}/{{number}}/comments", list_comments),
        Route.of("POST", f"{issues}/{{number}}/comments", create_comment),
    ]
