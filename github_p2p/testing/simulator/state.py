"""The simulator's mutable model: what writes changed, on top of the seeded data.

Pure: no sockets, no clock (every change takes ``now`` from the caller) and no locking (the
service holds one lock around every use).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from github_p2p.testing.simulator import seed
from github_p2p.testing.simulator.actions_secrets import SecretVault
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.entities import Comment, Issue

__all__ = ["CustomResource", "Fault", "IssueChanges", "SimulatorState", "later"]


def later(previous: int, now: int) -> int:
    """The next change time of a resource: ``now``, but always past ``previous``.

    ``Last-Modified`` has one-second resolution; two changes within a second would otherwise share
    a date and ``If-Modified-Since`` would wrongly answer 304 for the second one.
    """
    return max(now, previous + 1)


@dataclass(frozen=True)
class CustomResource:
    """A resource set at run time: any JSON body and the time it last changed."""

    body: Any
    modified: int


@dataclass(frozen=True)
class Fault:
    """One injected failure: ``kind`` is ``"5xx"`` or ``"secondary"``."""

    kind: str
    status: int
    retry_after: int | None = 0


@dataclass(frozen=True)
class IssueChanges:
    """Fields of a ``PATCH`` to an issue; ``None`` leaves a field alone."""

    title: str | None = None
    body: str | None = None
    body_given: bool = False
    state: str | None = None
    labels: tuple[str, ...] | None = None


class SimulatorState:
    """Custom resources, issues, comments, secrets and pending faults."""

    def __init__(self, config: SimulatorConfig, vault: SecretVault) -> None:
        self._config = config
        self.vault = vault
        self._resources: dict[str, CustomResource] = {}
        self._repo_modified: dict[str, int] = {}
        self._issues: dict[str, dict[int, Issue]] = {}
        self._comments: dict[int, Comment] = {}
        self._issue_comments: dict[tuple[str, int], list[int]] = {}
        self._next_comment_id = 1_000_000_001
        self._faults: deque[Fault] = deque()
        self._seed_open_counts: dict[str, tuple[int, int]] = {}

    # --- custom resources -------------------------------------------------------------------

    def set_resource(self, path: str, body: Any, now: int) -> CustomResource:
        """Create or replace the resource at ``path``; it gets a new ``Last-Modified``."""
        previous = self._resources.get(path)
        modified = now if previous is None else later(previous.modified, now)
        resource = CustomResource(body, modified)
        self._resources[path] = resource
        return resource

    def resource(self, path: str) -> CustomResource | None:
        """The custom resource at ``path``, if one was set."""
        return self._resources.get(path)

    # --- repositories -----------------------------------------------------------------------

    def repo_modified(self, repo: str) -> int:
        """When the repository object last changed."""
        return self._repo_modified.get(repo, seed.repo_updated(repo))

    def _touch_repo(self, repo: str, now: int) -> None:
        self._repo_modified[repo] = later(self.repo_modified(repo), now)

    def open_issue_count(self, repo: str) -> int:
        """Open issues plus open pull requests, as ``open_issues_count`` reports them."""
        # Hashing every seeded issue and pull request on each repository GET is measurable,
        # so the seeded counts are kept; issues are counted directly once materialised.
        counts = self._seed_open_counts.get(repo)
        if counts is None:
            config = self._config
            counts = (
                seed.seed_open_issue_count(repo, config.issue_count),
                seed.open_pull_count(repo, config.pull_count, config.issue_count + 1),
            )
            self._seed_open_counts[repo] = counts
        issues = self._issues.get(repo)
        if issues is None:
            return counts[0] + counts[1]
        return sum(1 for issue in issues.values() if issue.state == "open") + counts[1]

    # --- issues -----------------------------------------------------------------------------

    def issues(self, repo: str) -> dict[int, Issue]:
        """Every issue of ``repo`` by number (seeded ones are built on first use)."""
        issues = self._issues.get(repo)
        if issues is None:
            issues = seed.seed_issues(repo, self._config.issue_count)
            self._issues[repo] = issues
        return issues

    def create_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str | None,
        labels: tuple[str, ...],
        author: str,
        now: int,
    ) -> Issue:
        """Open a new issue; numbers continue after the seeded issues and pull requests."""
        issues = self.issues(repo)
        floor = self._config.issue_count + self._config.pull_count
        number = max([floor, *issues]) + 1
        issue = Issue(number, title, body, "open", labels, author, now, now, None, 0)
        issues[number] = issue
        self._touch_repo(repo, now)
        return issue

    def update_issue(self, repo: str, number: int, changes: IssueChanges, now: int) -> Issue | None:
        """Apply a ``PATCH``; ``None`` when there is no such issue."""
        issues = self.issues(repo)
        issue = issues.get(number)
        if issue is None:
            return None
        updated = replace(
            issue,
            title=issue.title if changes.title is None else changes.title,
            body=changes.body if changes.body_given else issue.body,
            labels=issue.labels if changes.labels is None else changes.labels,
            updated_at=later(issue.updated_at, now),
        )
        if changes.state is not None and changes.state != issue.state:
            closed_at = updated.updated_at if changes.state == "closed" else None
            updated = replace(updated, state=changes.state, closed_at=closed_at)
            self._touch_repo(repo, now)
        issues[number] = updated
        return updated

    def _bump_comments(self, repo: str, number: int, delta: int, now: int) -> None:
        issue = self.issues(repo)[number]
        self.issues(repo)[number] = replace(
            issue, comments=issue.comments + delta, updated_at=later(issue.updated_at, now)
        )

    # --- comments ---------------------------------------------------------------------------

    def comments_of(self, repo: str, number: int) -> list[Comment] | None:
        """The comments of an issue, oldest first; ``None`` when there is no such issue."""
        if number not in self.issues(repo):
            return None
        ids = self._issue_comments.get((repo, number), [])
        return [self._comments[i] for i in ids]

    def add_comment(
        self, repo: str, number: int, *, body: str, author: str, now: int
    ) -> Comment | None:
        """Comment on an issue; ``None`` when there is no such issue."""
        if number not in self.issues(repo):
            return None
        comment = Comment(self._next_comment_id, repo, number, body, author, now, now)
        self._next_comment_id += 1
        self._comments[comment.comment_id] = comment
        self._issue_comments.setdefault((repo, number), []).append(comment.comment_id)
        self._bump_comments(repo, number, 1, now)
        return comment

    def comment(self, repo: str, comment_id: int) -> Comment | None:
        """A comment of ``repo`` by id."""
        comment = self._comments.get(comment_id)
        return comment if comment is not None and comment.repo == repo else None

    def edit_comment(self, repo: str, comment_id: int, body: str, now: int) -> Comment | None:
        """Replace a comment's body; ``None`` when there is no such comment."""
        comment = self.comment(repo, comment_id)
        if comment is None:
            return None
        edited = replace(comment, body=body, updated_at=later(comment.updated_at, now))
        self._comments[comment_id] = edited
        # GitHub moves the issue's updated_at when one of its comments is edited.
        self._bump_comments(repo, comment.issue_number, 0, now)
        return edited

    def delete_comment(self, repo: str, comment_id: int, now: int) -> bool:
        """Delete a comment; returns whether it existed."""
        comment = self.comment(repo, comment_id)
        if comment is None:
            return False
        del self._comments[comment_id]
        self._issue_comments[(repo, comment.issue_number)].remove(comment_id)
        self._bump_comments(repo, comment.issue_number, -1, now)
        return True

    # --- faults -----------------------------------------------------------------------------

    def add_faults(self, fault: Fault, count: int) -> None:
        """Queue ``count`` copies of ``fault`` for the next API requests."""
        self._faults.extend([fault] * count)

    def next_fault(self) -> Fault | None:
        """The fault the next API request must suffer, if any."""
        return self._faults.popleft() if self._faults else None

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()
