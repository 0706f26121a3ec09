"""GitHub objects the simulator stores (issues, comments) and the JSON shapes it renders.

Everything here is a pure function of its arguments, so every simulator process, whatever its
port or start time, renders the same body (and so the same ETag) for the same state.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "ACTIONS_BOT",
    "API_ROOT",
    "BASE_TIME",
    "WEB_ROOT",
    "Comment",
    "Issue",
    "comment_json",
    "iso_time",
    "issue_json",
    "label_json",
    "node_id",
    "stable_int",
    "user_summary",
]

#: Hosts written into bodies; fixed rather than the simulator's own URL so bodies are identical
#: in every simulator process.
API_ROOT = "https://api.github.com"
WEB_ROOT = "https://github.com"
#: 2024-01-01T00:00:00Z, the epoch of the seeded data.
BASE_TIME = 1_704_067_200
#: The author of everything an installation (``ghs_``) token writes.
ACTIONS_BOT = "github-actions[bot]"
_ACTIONS_BOT_ID = 41898282


def stable_int(*parts: object, modulo: int = 2**32) -> int:
    """A number derived only from ``parts``: the same in every process and every run."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % modulo


def iso_time(epoch_seconds: int) -> str:
    """``2024-01-01T00:00:00Z``, GitHub's timestamp format."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, number: int) -> str:
    """A GraphQL node id in GitHub's legacy format (base64 of ``0NN:KindID``)."""
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()


def user_summary(login: str) -> dict[str, Any]:
    """The short user object GitHub embeds in other objects (``owner``, ``user``, ``author``)."""
    is_bot = login == ACTIONS_BOT
    user_id = (
        _ACTIONS_BOT_ID if is_bot else stable_int("user", login.lower(), modulo=90_000_000) + 1
    )
    kind = "Bot" if is_bot else "User"
    return {
        "login": login,
        "id": user_id,
        "node_id": node_id(kind, user_id),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "url": f"{API_ROOT}/users/{login}",
        "html_url": f"{WEB_ROOT}/{login}",
        "type": kind,
        "site_admin": False,
    }


_LABEL_COLORS = {
    "bug": "d73a4a",
    "documentation": "0075ca",
    "enhancement": "a2eeef",
    "good first issue": "7057ff",
    "question": "d876e3",
}


def label_json(repo: str, name: str) -> dict[str, Any]:
    """A label object; labels spring into existence when an issue uses them, as a fake may."""
    label_id = stable_int("label", repo, name, modulo=9_000_000_000) + 1_000_000_000
    return {
        "id": label_id,
        "node_id": node_id("Label", label_id),
        "url": f"{API_ROOT}/repos/{repo}/labels/{name}",
        "name": name,
        "color": _LABEL_COLORS.get(name, "ededed"),
        "default": name in _LABEL_COLORS,
        "description": None,
    }


@dataclass(frozen=True)
class Issue:
    """An issue of one repository; times are epoch seconds."""

    number: int
    title: str
    body: str | None
    state: str
    labels: tuple[str, ...]
    author: str
    created_at: int
    updated_at: int
    closed_at: int | None
    comments: int


@dataclass(frozen=True)
class Comment:
    """A comment on an issue; times are epoch seconds."""

    comment_id: int
    repo: str
    issue_number: int
    body: str
    author: str
    created_at: int
    updated_at: int


def issue_json(repo: str, issue: Issue) -> dict[str, Any]:
    """The REST shape of an issue."""
    issue_id = stable_int("issue", repo, issue.number, modulo=900_000_000) + 1_000_000_000
    url = f"{API_ROOT}/repos/{repo}/issues/{issue.number}"
    return {
        "url": url,
        "repository_url": f"{API_ROOT}/repos/{repo}",
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{WEB_ROOT}/{repo}/issues/{issue.number}",
        "id": issue_id,
        "node_id": node_id("Issue", issue_id),
        "number": issue.number,
        "title": issue.title,
        "user": user_summary(issue.author),
        "labels": [label_json(repo, name) for name in issue.labels],
        "state": issue.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": issue.comments,
        "created_at": iso_time(issue.created_at),
        "updated_at": iso_time(issue.updated_at),
        "closed_at": None if issue.closed_at is None else iso_time(issue.closed_at),
        "author_association": "OWNER" if issue.author == repo.split("/")[0] else "NONE",
        "body": issue.body,
        "state_reason": "completed" if issue.state == "closed" else None,
    }


def comment_json(comment: Comment) -> dict[str, Any]:
    """The REST shape of an issue comment."""
    repo = comment.repo
    return {
        "url": f"{API_ROOT}/repos/{repo}/issues/comments/{comment.comment_id}",
        "html_url": (
            f"{WEB_ROOT}/{repo}/issues/{comment.issue_number}#issuecomment-{comment.comment_id}"
        ),
        "issue_url": f"{API_ROOT}/repos/{repo}/issues/{comment.issue_number}",
        "id": comment.comment_id,
        "node_id": node_id("IssueComment", comment.comment_id),
        "user": user_summary(comment.author),
        "created_at": iso_time(comment.created_at),
        "updated_at": iso_time(comment.updated_at),
        "author_association": "OWNER" if comment.author == repo.split("/")[0] else "NONE",
        "body": comment.body,
    }
