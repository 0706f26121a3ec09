"""The data every repository and user has on first access, derived only from their names.

Nothing here reads a clock or a random source: two simulator processes agree on every body, so a
fleet of runners, each pointed at its own simulator process, still asks for identical resources.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from github_p2p.testing.simulator.entities import (
    API_ROOT,
    BASE_TIME,
    WEB_ROOT,
    Issue,
    iso_time,
    node_id,
    stable_int,
    user_summary,
)

__all__ = [
    "LABEL_NAMES",
    "Seeded",
    "commit",
    "commit_sha",
    "contents",
    "open_pull_count",
    "pulls",
    "releases",
    "repo_json",
    "repo_updated",
    "runners",
    "seed_issues",
    "seed_open_issue_count",
    "user_json",
    "workflow_runs",
]

DAY = 86_400
LABEL_NAMES = ("bug", "documentation", "enhancement", "good first issue", "question")
_PEOPLE = ("octocat", "hubot", "monalisa", "defunkt")
_TOPICS = (
    "cache misses",
    "flaky test",
    "docs typo",
    "login page",
    "CI matrix",
    "release notes",
    "memory use",
    "retry policy",
    "dark mode",
    "API pagination",
)
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Seeded:
    """A single-object body together with the time it last changed (its ``Last-Modified``)."""

    body: dict[str, Any]
    modified: int


def repo_updated(repo: str) -> int:
    """When a repository last changed before any write reached the simulator."""
    return BASE_TIME - stable_int("repo-updated", repo, modulo=30 * DAY)


def repo_json(repo: str, *, open_issues: int, updated_at: int) -> dict[str, Any]:
    """The REST shape of ``GET /repos/{owner}/{repo}``."""
    owner, name = repo.split("/", 1)
    repo_id = stable_int("repo", repo, modulo=900_000_000) + 100_000_000
    return {
        "id": repo_id,
        "node_id": node_id("Repository", repo_id),
        "name": name,
        "full_name": repo,
        "private": False,
        "owner": user_summary(owner),
        "html_url": f"{WEB_ROOT}/{repo}",
        "description": f"Simulated repository {repo}",
        "fork": False,
        "url": f"{API_ROOT}/repos/{repo}",
        "created_at": iso_time(
            BASE_TIME - stable_int("repo-created", repo, modulo=900 * DAY) - 60 * DAY
        ),
        "updated_at": iso_time(updated_at),
        "pushed_at": iso_time(updated_at),
        "homepage": None,
        "size": stable_int("repo-size", repo, modulo=50_000),
        "stargazers_count": stable_int("stars", repo, modulo=5_000),
        "watchers_count": stable_int("stars", repo, modulo=5_000),
        "language": "Python",
        "forks_count": stable_int("forks", repo, modulo=500),
        "archived": False,
        "disabled": False,
        "open_issues_count": open_issues,
        "license": None,
        "topics": [],
        "visibility": "public",
        "default_branch": "main",
    }


def user_json(login: str, *, authenticated: bool) -> Seeded:
    """``GET /users/{login}``; like GitHub, ``email`` is only filled for authenticated callers."""
    body = user_summary(login)
    updated = BASE_TIME - stable_int("user-updated", login.lower(), modulo=60 * DAY)
    body.update(
        {
            "name": login.capitalize(),
            "company": None,
            "blog": "",
            "location": None,
            "email": f"{login}@users.noreply.example" if authenticated else None,
            "bio": None,
            "public_repos": stable_int("public-repos", login.lower(), modulo=100),
            "followers": stable_int("followers", login.lower(), modulo=1000),
            "following": stable_int("following", login.lower(), modulo=100),
            "created_at": iso_time(BASE_TIME - 1000 * DAY),
            "updated_at": iso_time(updated),
        }
    )
    return Seeded(body, updated)


def _seed_issue(repo: str, number: int) -> Issue:
    created = BASE_TIME + number * 3600 + stable_int("issue-created", repo, number, modulo=1800)
    updated = created + stable_int("issue-updated", repo, number, modulo=5 * DAY)
    closed = stable_int("issue-state", repo, number, modulo=3) == 0
    labels = tuple(n for n in LABEL_NAMES if stable_int("label-on", repo, number, n, modulo=4) == 0)
    topic = _TOPICS[stable_int("issue-topic", repo, number, modulo=len(_TOPICS))]
    return Issue(
        number=number,
        title=f"Seeded issue {number}: {topic}",
        body=f"Issue {number} of {repo}, about {topic}.",
        state="closed" if closed else "open",
        labels=labels,
        author=_PEOPLE[stable_int("issue-author", repo, number, modulo=len(_PEOPLE))],
        created_at=created,
        updated_at=updated,
        closed_at=updated if closed else None,
        comments=0,
    )


def seed_issues(repo: str, count: int) -> dict[int, Issue]:
    """Issues ``1..count`` of a repository (numbers after them belong to pull requests)."""
    return {number: _seed_issue(repo, number) for number in range(1, count + 1)}


def seed_open_issue_count(repo: str, count: int) -> int:
    """How many seeded issues are open, without building them."""
    return sum(1 for n in range(1, count + 1) if stable_int("issue-state", repo, n, modulo=3) != 0)


def commit_sha(repo: str, ref: str) -> str:
    """The commit a ref points to: itself when it is a full SHA, else a name-derived one."""
    lowered = ref.lower()
    if _SHA_RE.match(lowered):
        return lowered
    return hashlib.sha1(f"{repo}@{ref}".encode()).hexdigest()


def commit(repo: str, ref: str) -> Seeded:
    """``GET /repos/{owner}/{repo}/commits/{ref}``."""
    sha = commit_sha(repo, ref)
    when = BASE_TIME - stable_int("commit-time", repo, sha, modulo=90 * DAY)
    author = _PEOPLE[stable_int("commit-author", repo, sha, modulo=len(_PEOPLE))]
    signature = {"name": author, "email": f"{author}@users.noreply.example", "date": iso_time(when)}
    parent = hashlib.sha1(f"{repo}^{sha}".encode()).hexdigest()
    return Seeded(
        {
            "sha": sha,
            "node_id": node_id("Commit", stable_int("commit-id", sha)),
            "commit": {
                "author": signature,
                "committer": signature,
                "message": f"Commit {sha[:7]} of {repo}",
                "tree": {
                    "sha": hashlib.sha1(f"tree{sha}".encode()).hexdigest(),
                    "url": f"{API_ROOT}/repos/{repo}/git/trees/{sha}",
                },
                "comment_count": 0,
            },
            "url": f"{API_ROOT}/repos/{repo}/commits/{sha}",
            "html_url": f"{WEB_ROOT}/{repo}/commit/{sha}",
            "author": user_summary(author),
            "committer": user_summary(author),
            "parents": [{"sha": parent, "url": f"{API_ROOT}/repos/{repo}/commits/{parent}"}],
            "stats": {"total": 12, "additions": 8, "deletions": 4},
            "files": [],
        },
        when,
    )


def contents(repo: str, path: str, ref: str, size: int) -> tuple[Seeded, bytes]:
    """``GET /repos/{owner}/{repo}/contents/{path}?ref=``: the JSON body and the raw file."""
    seed = hashlib.sha256(f"{repo}\x1f{ref}\x1f{path}".encode()).hexdigest()
    header = f"{repo}@{ref}:{path}\n".encode()
    filler = (seed.encode() + b"\n") * (size // 65 + 1)
    raw = (header + filler)[: max(size, 1)]
    blob_sha = hashlib.sha1(b"blob %d\x00" % len(raw) + raw).hexdigest()
    encoded = base64.b64encode(raw).decode()
    wrapped = "\n".join(encoded[i : i + 60] for i in range(0, len(encoded), 60)) + "\n"
    url = f"{API_ROOT}/repos/{repo}/contents/{path}?ref={ref}"
    html = f"{WEB_ROOT}/{repo}/blob/{ref}/{path}"
    download = f"https://raw.githubusercontent.com/{repo}/{ref}/{path}"
    when = BASE_TIME - stable_int("contents-time", repo, ref, path, modulo=90 * DAY)
    body = {
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": blob_sha,
        "size": len(raw),
        "url": url,
        "html_url": html,
        "git_url": f"{API_ROOT}/repos/{repo}/git/blobs/{blob_sha}",
        "download_url": download,
        "type": "file",
        "content": wrapped,
        "encoding": "base64",
        "_links": {
            "self": url,
            "git": f"{API_ROOT}/repos/{repo}/git/blobs/{blob_sha}",
            "html": html,
        },
    }
    return Seeded(body, when), raw


def releases(repo: str, count: int) -> list[Seeded]:
    """Releases, newest first; the newest is a prerelease so ``latest`` differs from ``[0]``."""
    result = []
    for index in range(count, 0, -1):
        release_id = stable_int("release", repo, index, modulo=900_000_000) + 100_000_000
        published = BASE_TIME - (count - index) * 7 * DAY
        tag = f"v1.{index}.0"
        author = _PEOPLE[stable_int("release-author", repo, modulo=len(_PEOPLE))]
        body = {
            "url": f"{API_ROOT}/repos/{repo}/releases/{release_id}",
            "html_url": f"{WEB_ROOT}/{repo}/releases/tag/{tag}",
            "assets_url": f"{API_ROOT}/repos/{repo}/releases/{release_id}/assets",
            "id": release_id,
            "node_id": node_id("Release", release_id),
            "tag_name": tag,
            "target_commitish": "main",
            "name": f"Release {tag}",
            "draft": False,
            "prerelease": index == count and count > 1,
            "created_at": iso_time(published - 600),
            "published_at": iso_time(published),
            "author": user_summary(author),
            "assets": [],
            "tarball_url": f"{API_ROOT}/repos/{repo}/tarball/{tag}",
            "zipball_url": f"{API_ROOT}/repos/{repo}/zipball/{tag}",
            "body": f"Changes in {tag}.",
        }
        result.append(Seeded(body, published))
    return result


def _pull_closed(repo: str, number: int) -> bool:
    return stable_int("pull-state", repo, number, modulo=4) == 0


def open_pull_count(repo: str, count: int, first_number: int) -> int:
    """How many seeded pull requests are open, without building them."""
    return sum(1 for n in range(first_number, first_number + count) if not _pull_closed(repo, n))


def pulls(repo: str, count: int, first_number: int) -> list[dict[str, Any]]:
    """Pull requests numbered from ``first_number``, newest first."""
    result = []
    for number in range(first_number + count - 1, first_number - 1, -1):
        pr_id = stable_int("pull", repo, number, modulo=900_000_000) + 100_000_000
        created = BASE_TIME + number * 3600
        closed = _pull_closed(repo, number)
        author = _PEOPLE[stable_int("pull-author", repo, number, modulo=len(_PEOPLE))]
        branch = f"feature-{number}"
        result.append(
            {
                "url": f"{API_ROOT}/repos/{repo}/pulls/{number}",
                "id": pr_id,
                "node_id": node_id("PullRequest", pr_id),
                "html_url": f"{WEB_ROOT}/{repo}/pull/{number}",
                "number": number,
                "state": "closed" if closed else "open",
                "locked": False,
                "title": f"Pull request {number}",
                "user": user_summary(author),
                "body": f"Changes from {branch}.",
                "labels": [],
                "created_at": iso_time(created),
                "updated_at": iso_time(created + DAY),
                "closed_at": iso_time(created + DAY) if closed else None,
                "merged_at": iso_time(created + DAY) if closed else None,
                "draft": False,
                "head": {
                    "label": f"{repo.split('/')[0]}:{branch}",
                    "ref": branch,
                    "sha": commit_sha(repo, branch),
                },
                "base": {
                    "label": f"{repo.split('/')[0]}:main",
                    "ref": "main",
                    "sha": commit_sha(repo, "main"),
                },
                "author_association": "CONTRIBUTOR",
            }
        )
    return result


def workflow_runs(repo: str, count: int) -> list[dict[str, Any]]:
    """Workflow runs, newest first; the newest is still in progress."""
    result = []
    for number in range(count, 0, -1):
        run_id = stable_int("run", repo, number, modulo=9_000_000_000) + 1_000_000_000
        created = BASE_TIME - (count - number) * 1800
        in_progress = number == count
        failed = stable_int("run-conclusion", repo, number, modulo=5) == 0
        branch = "main" if number % 3 else f"feature-{number}"
        result.append(
            {
                "id": run_id,
                "name": "CI",
                "node_id": node_id("WorkflowRun", run_id),
                "head_branch": branch,
                "head_sha": commit_sha(repo, f"run-{number}"),
                "path": ".github/workflows/ci.yml",
                "run_number": number,
                "run_attempt": 1,
                "event": "push",
                "status": "in_progress" if in_progress else "completed",
                "conclusion": None if in_progress else ("failure" if failed else "success"),
                "workflow_id": stable_int("workflow", repo, modulo=90_000_000) + 1_000_000,
                "url": f"{API_ROOT}/repos/{repo}/actions/runs/{run_id}",
                "html_url": f"{WEB_ROOT}/{repo}/actions/runs/{run_id}",
                "created_at": iso_time(created),
                "updated_at": iso_time(created + 300),
                "run_started_at": iso_time(created),
            }
        )
    return result


def runners(repo: str, count: int) -> list[dict[str, Any]]:
    """Self-hosted runners of a repository."""
    result = []
    for index in range(1, count + 1):
        arch = ("X64", "ARM64")[index % 2]
        result.append(
            {
                "id": stable_int("runner", repo, index, modulo=900_000) + 1,
                "name": f"runner-{index}",
                "os": "Linux",
                "status": "online" if index % 3 else "offline",
                "busy": index % 2 == 0,
                "labels": [
                    {"id": 1, "name": "self-hosted", "type": "read-only"},
                    {"id": 2, "name": "Linux", "type": "read-only"},
                    {"id": 3, "name": arch, "type": "read-only"},
                ],
            }
        )
    return result
