"""The peer registry in the comments of a GitHub issue.

Each node keeps exactly one comment (found by its marker, see :mod:`.record`) holding its sealed
record. Every call goes through a :class:`~github_p2p.client.GitHubClient`, so reads are cached
(a fleet reading the same pages pays once) and counted, and writes pass through and invalidate.

Calls, with ``P`` = pages of comments (100 per page):

* :meth:`IssueRegistry.scan`: ``P`` GETs (fewer when cached);
* :meth:`IssueRegistry.publish`: one PATCH once the node's comment id is known, else a scan and
  one POST (or PATCH, after a restart with the same peer id); duplicates of its own are deleted;
* :meth:`IssueRegistry.withdraw`: like a publish: the node's comment becomes its withdrawal;
* :meth:`IssueRegistry.prune`: one DELETE per expired record, at most ``limit``.

A comment's ``updated_at`` (GitHub's clock) is when it was posted, for the readers' cap on a
record's lifetime (see :mod:`.listing`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from github_p2p.cache.client import GitHubClient, parse_json
from github_p2p.cache.engine import CachedResponse
from github_p2p.core.keys import FleetKeys
from github_p2p.core.pagination import next_page
from github_p2p.errors import ConfigError, UpstreamError
from github_p2p.registry.interface import RegistryCounters
from github_p2p.registry.listing import DEFAULT_MAX_AGE, Document, Listing, classify
from github_p2p.registry.record import RegistryRecord, comment_body, parse_comment, seal_record

__all__ = ["DEFAULT_LABEL", "DEFAULT_TITLE", "IssueLocation", "IssueRegistry"]

log = logging.getLogger(__name__)

DEFAULT_LABEL = "github-p2p-registry"
DEFAULT_TITLE = "github-p2p peer registry"
_ISSUE_BODY = (
    "This issue is the peer registry of a [github-p2p](https://github.com/) fleet.\n\n"
    "Each comment is the sealed record of one running node: only the fleet's key opens it, "
    "and nodes refresh their own comment and delete it when they stop. Comments from anyone "
    "else are ignored. Locking this issue keeps outsiders from commenting at all."
)
_PER_PAGE = 100


@dataclass(frozen=True)
class IssueLocation:
    """Which issue holds the registry: ``number``, or the open issue with ``label`` and
    ``title`` (created when missing and ``create`` allows)."""

    repo: str
    number: int | None = None
    label: str = DEFAULT_LABEL
    title: str = DEFAULT_TITLE
    create: bool = True

    def __post_init__(self) -> None:
        owner, _, name = self.repo.partition("/")
        if not owner or not name or "/" in name:
            raise ConfigError(
                f"the registry needs the repository as owner/repo (GITHUB_REPOSITORY), "
                f"got {self.repo!r}")
        if self.number is not None and self.number < 1:
            raise ConfigError("the registry issue number must be positive")


class IssueRegistry:
    """A :class:`~github_p2p.registry.interface.Registry` on an issue's comments."""

    def __init__(
        self,
        client: GitHubClient,
        location: IssueLocation,
        keys: FleetKeys,
        *,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
        max_pages: int = 50,
        owns_client: bool = False,
        max_age: float = DEFAULT_MAX_AGE,
    ) -> None:
        self.client = client
        self.location = location
        self.counters = RegistryCounters()
        self._keys = keys
        self._clock = clock
        self._random = random
        self._max_pages = max_pages
        self._max_age = max_age
        self._owns_client = owns_client
        self._number = location.number
        # Comment ids by peer id, learned from scans and our own writes, so that a heartbeat
        # costs one PATCH instead of a scan. Only ever grown by scans (a cached page may be
        # older than our last write); a 404 or a delete removes an id. Once one scan is done,
        # a peer missing here has no comment (a stale page at worst makes a duplicate, which
        # the next publish deletes).
        self._where: dict[str, list[int]] = {}
        self._scanned = False
        self._lock = threading.Lock()

    # -- HTTP ----------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None,
              body: Any = None) -> CachedResponse:
        resp = self.client.request(method, path, params=params, json_body=body)
        self.counters.add("requests")
        self.counters.add("api_calls", resp.upstream_calls)
        return resp

    def _pages(self, path: str, params: list[tuple[str, str]]) -> Iterator[list[Any]]:
        current, query = path, params
        for _ in range(self._max_pages):
            resp = self._call("GET", current, params=query)
            page = parse_json(resp, current)
            if not isinstance(page, list):
                raise UpstreamError(f"GitHub's answer to {current} is not a list")
            yield page
            following = next_page(self.client.backend.base_url, resp.headers)
            if following is None:
                return
            current, query = following
        log.warning("the registry issue has more than %d pages of comments; read the first "
                    "ones only", self._max_pages)

    # -- the issue -----------------------------------------------------------------------------

    @property
    def _repo_path(self) -> str:
        return f"/repos/{self.location.repo}"

    def issue_number(self) -> int:
        """The registry issue's number: given, found by label and title, or created."""
        if self._number is not None:
            return self._number
        loc = self.location
        query = [("labels", loc.label), ("state", "open"), ("per_page", str(_PER_PAGE))]
        for page in self._pages(f"{self._repo_path}/issues", query):
            for issue in page:
                if isinstance(issue, dict) and issue.get("title") == loc.title \
                        and "pull_request" not in issue and isinstance(issue.get("number"), int):
                    self._number = int(issue["number"])
                    return self._number
        if not loc.create:
            raise ConfigError(f"no open issue titled {loc.title!r} with label {loc.label!r} "
                              f"in {loc.repo}")
        created = parse_json(
            self._call("POST", f"{self._repo_path}/issues",
                       body={"title": loc.title, "body": _ISSUE_BODY, "labels": [loc.label]}),
            "creating the registry issue")
        self._number = _field_int(created, "number", "the created registry issue")
        log.info("created the registry issue #%d in %s", self._number, loc.repo)
        return self._number

    def _comments_path(self) -> str:
        return f"{self._repo_path}/issues/{self.issue_number()}/comments"

    def _comment_path(self, comment_id: int) -> str:
        return f"{self._repo_path}/issues/comments/{comment_id}"

    # -- Registry ------------------------------------------------------------------------------

    def scan(self, now: float) -> Listing:
        """Read every comment (all pages) and classify it."""
        with self._lock:
            return self._scan(now)

    def _scan(self, now: float) -> Listing:
        documents: list[Document] = []
        for page in self._pages(self._comments_path(), [("per_page", str(_PER_PAGE))]):
            for comment in page:
                if isinstance(comment, dict) and isinstance(comment.get("id"), int):
                    documents.append(Document(str(comment["id"]), str(comment.get("body") or ""),
                                              _timestamp(comment.get("updated_at"))))
        listing = classify(self._keys, documents, now, parse_comment, self._max_age)
        self._scanned = True
        for item in listing.found:
            known = self._where.setdefault(item.record.peer_id, [])
            if int(item.locator) not in known:
                known.append(int(item.locator))
        self.counters.observe(listing)
        return listing

    def list_live(self, now: float) -> tuple[RegistryRecord, ...]:
        """The live records, one per peer."""
        return self.scan(now).live

    def publish(self, record: RegistryRecord) -> None:
        """Upsert this peer's comment (and delete any older duplicate of it)."""
        with self._lock:
            self._upsert(record)
            self.counters.add("published")

    def withdraw(self, withdrawal: RegistryRecord) -> int:
        """Make this peer's comment its withdrawal (and delete any duplicate of it)."""
        with self._lock:
            self._upsert(withdrawal)
            self.counters.add("withdrawn")
            return 1

    def _upsert(self, record: RegistryRecord) -> None:
        body = comment_body(seal_record(self._keys, record, random=self._random))
        if not self._scanned:
            self._scan(self._clock())
        kept: int | None = None
        for comment_id in list(self._where.get(record.peer_id, [])):
            if kept is None:
                resp = self._call("PATCH", self._comment_path(comment_id), body={"body": body})
                if resp.status in (403, 404, 410):
                    # Gone (pruned, deleted by a maintainer) or not editable by this token.
                    self._forget(record.peer_id, comment_id)
                    continue
                parse_json(resp, "updating the registry comment")
                kept = comment_id
            else:
                self._delete(record.peer_id, comment_id)
        if kept is None:
            created = parse_json(
                self._call("POST", self._comments_path(), body={"body": body}),
                "adding the registry comment")
            kept = _field_int(created, "id", "the new registry comment")
        self._where[record.peer_id] = [kept]

    def _forget(self, peer_id: str, comment_id: int) -> None:
        known = self._where.get(peer_id, [])
        if comment_id in known:
            known.remove(comment_id)
        if not known:
            self._where.pop(peer_id, None)

    def _delete(self, peer_id: str, comment_id: int) -> bool:
        resp = self._call("DELETE", self._comment_path(comment_id))
        if resp.status not in (403, 404, 410):  # 403: someone else's, and we may not
            parse_json(resp, "deleting a registry comment")
        self._forget(peer_id, comment_id)
        return resp.status < 400

    def prune(self, now: float, *, listing: Listing | None = None,
              limit: int | None = None) -> int:
        """Delete comments whose record has expired (at most ``limit`` per call)."""
        with self._lock:
            listing = listing if listing is not None else self._scan(now)
            expired = listing.expired if limit is None else listing.expired[:max(limit, 0)]
            pruned = sum(self._delete(item.record.peer_id, int(item.locator))
                         for item in expired)
            self.counters.add("pruned", pruned)
            return pruned

    def close(self) -> None:
        """Close the client if this registry made it."""
        if self._owns_client:
            self.client.close()


def _timestamp(text: Any) -> float | None:
    """Epoch seconds of GitHub's ``2026-01-02T03:04:05Z``; ``None`` when absent or odd."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc).timestamp()


def _field_int(data: Any, name: str, what: str) -> int:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise UpstreamError(f"GitHub's answer about {what} has no {name}")
    return value
