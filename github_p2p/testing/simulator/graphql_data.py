"""GraphQL objects over the simulator's state: the same repositories, issues, pull requests,
releases and users the REST side serves, in GitHub's GraphQL shapes.

Objects are plain dicts (``__typename`` picks the type of an interface); fields that take
arguments or cost something to build are callables, which graphql-core's default resolver calls
with the field's arguments. Every node rendered is remembered by id in a :class:`NodeRegistry`,
so ``node(id:)`` and mutations that name a node by id (``createIssue(input: {repositoryId})``)
find it again, as on GitHub, where ids come from earlier answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError

from github_p2p.testing.simulator import seed
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.entities import (
    ACTIONS_BOT,
    WEB_ROOT,
    Comment,
    Issue,
    comment_json,
    iso_time,
    issue_json,
    label_json,
    stable_int,
    user_summary,
)
from github_p2p.testing.simulator.graphql_paging import connection
from github_p2p.testing.simulator.state import SimulatorState

__all__ = ["GraphContext", "NodeRegistry", "Objects", "RateInfo", "not_found"]

Obj = dict[str, Any]
#: graphql-core's resolve info (generic in 3.3, not in 3.2).
Info = Any
_REACTIONS = ("THUMBS_UP", "THUMBS_DOWN", "LAUGH", "HOORAY", "CONFUSED", "HEART", "ROCKET", "EYES")


def not_found(message: str, info: Info | None = None) -> GraphQLError:
    """GitHub's ``NOT_FOUND`` error."""
    return GraphQLError(message, info.field_nodes if info is not None else None,
                        extensions={"type": "NOT_FOUND"})


@dataclass
class NodeRegistry:
    """Node ids seen in answers: id → ``(kind, repository, number)``."""

    nodes: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    max_entries: int = 200_000

    def remember(self, node_id: str, kind: str, repo: str, number: int = 0) -> None:
        """Remember where ``node_id`` points; forgets everything when full (ids come back
        with the next answer that renders them)."""
        if node_id not in self.nodes and len(self.nodes) >= self.max_entries:
            self.nodes.clear()
        self.nodes[node_id] = (kind, repo, number)

    def find(self, node_id: str) -> tuple[str, str, int] | None:
        """Where ``node_id`` points, if it was rendered before."""
        return self.nodes.get(node_id)


@dataclass(frozen=True)
class RateInfo:
    """The caller's GraphQL budget after this query: what ``rateLimit`` reports."""

    cost: int
    limit: int
    used: int
    reset: int
    node_count: int


@dataclass(frozen=True)
class GraphContext:
    """What one GraphQL request may read and change."""

    state: SimulatorState
    config: SimulatorConfig
    registry: NodeRegistry
    viewer: str
    now: int
    rate: RateInfo


def _no_reactions(_info: Info) -> list[Obj]:
    # GitHub lists every reaction kind, each with its count (nobody reacts in the simulator).
    empty = {"totalCount": 0, "pageInfo": {"hasNextPage": False, "hasPreviousPage": False,
                                           "startCursor": None, "endCursor": None}}
    return [{"content": content, "users": lambda _i, **_: empty, "viewerHasReacted": False}
            for content in _REACTIONS]


def _order(items: list[Any], order_by: dict[str, str] | None, key: Callable[[Any], Any],
           name_key: Callable[[Any], Any] | None = None) -> list[Any]:
    field_name = (order_by or {}).get("field", "CREATED_AT")
    descending = (order_by or {}).get("direction", "ASC") == "DESC"
    sort_key = name_key if field_name == "NAME" and name_key is not None else key
    return sorted(items, key=sort_key, reverse=descending)


class Objects:
    """Renders the state as GraphQL objects for one request."""

    def __init__(self, ctx: GraphContext) -> None:
        self.ctx = ctx

    # -- people ----------------------------------------------------------------------------

    def actor(self, login: str) -> Obj:
        """A user, or the Actions bot."""
        summary = user_summary(login)
        if login == ACTIONS_BOT:
            return {"__typename": "Bot", "id": summary["node_id"], "databaseId": summary["id"],
                    "login": login, "avatarUrl": lambda _i, **_: summary["avatar_url"],
                    "resourcePath": f"/apps/{login.removesuffix('[bot]')}",
                    "url": f"{WEB_ROOT}/apps/{login.removesuffix('[bot]')}",
                    "createdAt": "2018-07-30T16:31:26Z"}
        return self.user(login)

    def user(self, login: str) -> Obj:
        """A ``User`` (the Actions bot too, as GitHub's ``viewer`` does for its token)."""
        body = seed.user_json(login, authenticated=True).body
        return {
            "__typename": "User", "id": body["node_id"], "databaseId": body["id"],
            "login": login, "name": body["name"], "email": body["email"] or "",
            "bio": body["bio"], "company": body["company"], "location": body["location"],
            "avatarUrl": lambda _i, **_: body["avatar_url"], "resourcePath": f"/{login}",
            "url": body["html_url"], "createdAt": body["created_at"],
            "updatedAt": body["updated_at"], "isViewer": login == self.ctx.viewer,
            "isSiteAdmin": False,
            "repository": lambda _i, name, **_: self.repository(f"{login}/{name}".lower()),
            "repositories": lambda i, privacy=None, ownerAffiliations=None, isFork=None,
            orderBy=None, **page: connection(
                i, [] if privacy == "PRIVATE" or isFork else self._repositories_of(login),
                self.repository, **page),
        }

    @staticmethod
    def _repositories_of(login: str) -> list[str]:
        # Every owner/name exists; a user lists a few public ones, the same in every run.
        count = 1 + stable_int("repositories-of", login.lower(), modulo=3)
        return sorted(f"{login}/project-{n}".lower() for n in range(1, count + 1))

    def _users(self, info: Info, logins: Sequence[str], **page: Any) -> Obj:
        return connection(info, list(logins), self.user, **page)

    # -- repositories ----------------------------------------------------------------------

    def repository(self, repo: str) -> Obj:
        """A ``Repository``: every ``owner/name`` exists, as on the REST side."""
        state = self.ctx.state
        modified = state.repo_modified(repo)
        body = seed.repo_json(repo, open_issues=state.open_issue_count(repo), updated_at=modified)
        self.ctx.registry.remember(body["node_id"], "Repository", repo)
        owner = repo.split("/")[0]
        admin = self.ctx.viewer == owner
        main_sha = seed.commit_sha(repo, "main")
        releases = seed.releases(repo, self.ctx.config.release_count)
        return {
            "__typename": "Repository", "id": body["node_id"], "databaseId": body["id"],
            "name": body["name"], "nameWithOwner": repo, "owner": self.user(owner),
            "description": body["description"], "homepageUrl": body["homepage"],
            "url": body["html_url"], "sshUrl": f"git@github.com:{repo}.git", "mirrorUrl": None,
            "resourcePath": f"/{repo}",
            "openGraphImageUrl": f"https://opengraph.githubassets.com/1/{repo}",
            "usesCustomOpenGraphImage": False, "securityPolicyUrl": None,
            "createdAt": body["created_at"], "pushedAt": body["pushed_at"],
            "updatedAt": body["updated_at"], "visibility": "PUBLIC", "isPrivate": False,
            "isArchived": False, "isDisabled": False, "isEmpty": False, "isFork": False,
            "isInOrganization": False, "isLocked": False, "isMirror": False,
            "isTemplate": False, "isBlankIssuesEnabled": True, "isSecurityPolicyEnabled": False,
            "isUserConfigurationRepository": body["name"] == owner,
            "hasIssuesEnabled": True, "hasProjectsEnabled": True, "hasWikiEnabled": True,
            "hasDiscussionsEnabled": False, "mergeCommitAllowed": True,
            "squashMergeAllowed": True, "rebaseMergeAllowed": True,
            "deleteBranchOnMerge": False, "forkCount": body["forks_count"],
            "stargazerCount": body["stargazers_count"], "diskUsage": body["size"],
            "parent": None, "templateRepository": None,
            "defaultBranchRef": {"__typename": "Ref", "id": f"REF_{repo}:main", "name": "main",
                                 "prefix": "refs/heads/", "target": self._commit(repo, main_sha)},
            "primaryLanguage": {"id": "MDg6TGFuZ3VhZ2UxNDU=", "name": "Python",
                                "color": "#3572A5"},
            "licenseInfo": None,
            "viewerCanAdminister": admin, "viewerHasStarred": False,
            "viewerPermission": "ADMIN" if admin else "READ",
            "viewerSubscription": "UNSUBSCRIBED", "viewerDefaultMergeMethod": "MERGE",
            "repositoryTopics": lambda i, **page: connection(i, [], dict, **page),
            "watchers": lambda i, **page: self._users(i, [owner], **page),
            "assignableUsers": lambda i, query=None, **page: self._users(i, [owner], **page),
            "mentionableUsers": lambda i, query=None, **page: self._users(i, [owner], **page),
            "labels": lambda i, orderBy=None, query=None, **page: connection(
                i, [n for n in seed.LABEL_NAMES if query is None or query in n],
                lambda name: self.label(repo, name), **page),
            "issues": lambda i, **args: self._issues(i, repo, **args),
            "issue": lambda i, number: self._issue_by_number(repo, number),
            "pullRequests": lambda i, **args: self._pulls(i, repo, **args),
            "pullRequest": lambda i, number: self._pull_by_number(repo, number),
            "issueOrPullRequest": lambda i, number: self._issue_or_pull(repo, number),
            "releases": lambda i, orderBy=None, **page: connection(
                i, _order(list(releases), orderBy, lambda r: r.modified,
                          lambda r: r.body["name"]),
                lambda r: self.release(repo, r.body, releases), **page),
            "release": lambda i, tagName: next(
                (self.release(repo, r.body, releases) for r in releases
                 if r.body["tag_name"] == tagName), None),
            "latestRelease": lambda i: next(
                (self.release(repo, r.body, releases) for r in releases
                 if not r.body["prerelease"] and not r.body["draft"]), None),
        }

    def _commit(self, repo: str, sha: str) -> Obj:
        return {"__typename": "Commit", "id": f"C_{sha}", "oid": sha, "abbreviatedOid": sha[:7],
                "messageHeadline": f"Commit {sha[:7]} of {repo}",
                "url": f"{WEB_ROOT}/{repo}/commit/{sha}"}

    def label(self, repo: str, name: str) -> Obj:
        """A ``Label``."""
        body = label_json(repo, name)
        return {"__typename": "Label", "id": body["node_id"], "name": name,
                "color": body["color"], "description": body["description"],
                "isDefault": body["default"], "url": f"{WEB_ROOT}/{repo}/labels/{name}"}

    def release(self, repo: str, body: dict[str, Any], all_releases: Sequence[Any]) -> Obj:
        """A ``Release``; ``isLatest`` is the newest that is neither a draft nor a prerelease."""
        latest = next((r.body["id"] for r in all_releases
                       if not r.body["prerelease"] and not r.body["draft"]), None)
        return {"__typename": "Release", "id": body["node_id"], "databaseId": body["id"],
                "name": body["name"], "tagName": body["tag_name"], "description": body["body"],
                "isDraft": body["draft"], "isPrerelease": body["prerelease"],
                "isLatest": body["id"] == latest, "createdAt": body["created_at"],
                "publishedAt": body["published_at"], "url": body["html_url"],
                "author": self.user(body["author"]["login"])}

    # -- issues ----------------------------------------------------------------------------

    def issue(self, repo: str, issue: Issue) -> Obj:
        """An ``Issue`` of ``repo``."""
        body = issue_json(repo, issue)
        self.ctx.registry.remember(body["node_id"], "Issue", repo, issue.number)
        closed = issue.state == "closed"
        return {
            "__typename": "Issue", "id": body["node_id"], "databaseId": body["id"],
            "number": issue.number, "title": issue.title, "body": issue.body or "",
            "state": issue.state.upper(), "stateReason": "COMPLETED" if closed else None,
            "closed": closed, "closedAt": body["closed_at"], "createdAt": body["created_at"],
            "updatedAt": body["updated_at"], "locked": False, "url": body["html_url"],
            "resourcePath": f"/{repo}/issues/{issue.number}",
            "author": self.actor(issue.author),
            "authorAssociation": body["author_association"],
            "labels": lambda i, orderBy=None, **page: connection(
                i, list(issue.labels), lambda name: self.label(repo, name), **page),
            "assignees": lambda i, **page: self._users(i, [], **page),
            "comments": lambda i, **page: connection(
                i, self.ctx.state.comments_of(repo, issue.number) or [], self.comment, **page),
            "milestone": None,
            "repository": lambda i: self.repository(repo),
            "viewerDidAuthor": issue.author == self.ctx.viewer, "reactionGroups": _no_reactions,
        }

    def comment(self, comment: Comment) -> Obj:
        """An ``IssueComment``."""
        body = comment_json(comment)
        return {"__typename": "IssueComment", "id": body["node_id"], "databaseId": body["id"],
                "body": comment.body, "author": self.actor(comment.author),
                "authorAssociation": body["author_association"],
                "createdAt": body["created_at"], "updatedAt": body["updated_at"],
                "url": body["html_url"], "includesCreatedEdit": False, "isMinimized": False,
                "minimizedReason": None, "viewerDidAuthor": comment.author == self.ctx.viewer,
                "reactionGroups": _no_reactions}

    def _issues(self, info: Info, repo: str, *, states: list[str] | None = None,
                labels: list[str] | None = None, orderBy: dict[str, str] | None = None,
                filterBy: dict[str, Any] | None = None, **page: Any) -> Obj:
        filters = filterBy or {}
        wanted_states = states or filters.get("states") or ["OPEN", "CLOSED"]
        wanted_labels = labels or filters.get("labels") or []
        author = filters.get("createdBy")
        items = [
            issue for issue in self.ctx.state.issues(repo).values()
            if issue.state.upper() in wanted_states
            and (not wanted_labels or any(name in issue.labels for name in wanted_labels))
            and (author is None or issue.author == author)
            # Nobody is assigned or mentioned in the simulated data.
            and filters.get("assignee") is None and filters.get("mentioned") is None
        ]
        sort_field = (orderBy or {}).get("field", "CREATED_AT")
        key: Callable[[Issue], Any] = {
            "UPDATED_AT": lambda i: (i.updated_at, i.number),
            "COMMENTS": lambda i: (i.comments, i.number),
        }.get(sort_field, lambda i: (i.created_at, i.number))
        items = _order(items, orderBy, key)
        return connection(info, items, lambda issue: self.issue(repo, issue), **page)

    def _issue_by_number(self, repo: str, number: int) -> Obj:
        issue = self.ctx.state.issues(repo).get(number)
        if issue is None:
            raise not_found(f"Could not resolve to an issue or pull request with the number of "
                            f"{number}.")
        return self.issue(repo, issue)

    def _issue_or_pull(self, repo: str, number: int) -> Obj:
        issue = self.ctx.state.issues(repo).get(number)
        if issue is not None:
            return self.issue(repo, issue)
        for body in self._pull_list(repo):
            if body["number"] == number:
                return self.pull(repo, body)
        raise not_found(f"Could not resolve to an issue or pull request with the number of "
                        f"{number}.")

    # -- pull requests ---------------------------------------------------------------------

    def _pull_list(self, repo: str) -> list[dict[str, Any]]:
        config = self.ctx.config
        return seed.pulls(repo, config.pull_count, config.issue_count + 1)

    def pull(self, repo: str, body: dict[str, Any]) -> Obj:
        """A ``PullRequest`` of ``repo`` from its REST shape."""
        self.ctx.registry.remember(body["node_id"], "PullRequest", repo, body["number"])
        number = body["number"]
        merged = body["merged_at"] is not None
        owner = repo.split("/")[0]
        changes = stable_int("pull-changes", repo, number, modulo=400)
        author = body["user"]["login"]
        return {
            "__typename": "PullRequest", "id": body["node_id"], "databaseId": body["id"],
            "number": number, "title": body["title"], "body": body["body"] or "",
            "state": "MERGED" if merged else body["state"].upper(),
            "closed": body["state"] == "closed", "closedAt": body["closed_at"],
            "merged": merged, "mergedAt": body["merged_at"],
            "mergedBy": self.actor(owner) if merged else None,
            "createdAt": body["created_at"], "updatedAt": body["updated_at"],
            "locked": False, "isDraft": body["draft"], "url": body["html_url"],
            "resourcePath": f"/{repo}/pull/{number}", "author": self.actor(author),
            "authorAssociation": body["author_association"],
            "baseRefName": body["base"]["ref"], "baseRefOid": body["base"]["sha"],
            "headRefName": body["head"]["ref"], "headRefOid": body["head"]["sha"],
            "headRepository": lambda i: self.repository(repo),
            "headRepositoryOwner": lambda i: self.user(owner),
            "isCrossRepository": False, "maintainerCanModify": False,
            "mergeable": "UNKNOWN" if merged else "MERGEABLE",
            "additions": changes, "deletions": changes // 3, "changedFiles": 1 + changes % 7,
            "mergeCommit": self._commit(repo, seed.commit_sha(repo, f"merge-{number}"))
            if merged else None,
            "potentialMergeCommit": None if merged else self._commit(
                repo, seed.commit_sha(repo, f"merge-{number}")),
            "labels": lambda i, orderBy=None, **page: connection(i, [], dict, **page),
            "assignees": lambda i, **page: self._users(i, [], **page),
            "comments": lambda i, **page: connection(i, [], dict, **page),
            "milestone": None,
            "repository": lambda i: self.repository(repo),
            "viewerDidAuthor": author == self.ctx.viewer, "reactionGroups": _no_reactions,
        }

    def _pulls(self, info: Info, repo: str, *, states: list[str] | None = None,
               labels: list[str] | None = None, headRefName: str | None = None,
               baseRefName: str | None = None, orderBy: dict[str, str] | None = None,
               **page: Any) -> Obj:
        def state_of(body: dict[str, Any]) -> str:
            return "MERGED" if body["merged_at"] else str(body["state"]).upper()

        items = [
            body for body in self._pull_list(repo)
            if (not states or state_of(body) in states)
            and (not labels or any(lbl["name"] in labels for lbl in body["labels"]))
            and headRefName in (None, body["head"]["ref"])
            and baseRefName in (None, body["base"]["ref"])
        ]
        items = _order(items, orderBy, lambda b: (b["created_at"], b["number"]))
        return connection(info, items, lambda body: self.pull(repo, body), **page)

    def _pull_by_number(self, repo: str, number: int) -> Obj:
        for body in self._pull_list(repo):
            if body["number"] == number:
                return self.pull(repo, body)
        raise not_found(f"Could not resolve to a PullRequest with the number of {number}.")

    # -- nodes -----------------------------------------------------------------------------

    def node(self, node_id: str) -> Obj | None:
        """The object a node id names, if an earlier answer rendered it."""
        found = self.ctx.registry.find(node_id)
        if found is None:
            return None
        kind, repo, number = found
        if kind == "Repository":
            return self.repository(repo)
        if kind == "Issue":
            issue = self.ctx.state.issues(repo).get(number)
            return None if issue is None else self.issue(repo, issue)
        return self._pull_by_number(repo, number)

    def rate_limit(self) -> Obj:
        """The ``RateLimit`` object of this request."""
        rate = self.ctx.rate
        return {"cost": rate.cost, "limit": rate.limit, "nodeCount": rate.node_count,
                "remaining": max(0, rate.limit - rate.used), "used": rate.used,
                "resetAt": iso_time(rate.reset)}

