"""The work queue's MCP tools: agents on a run's runners split one list of work items.

Every agent submits the same list (``queue_submit``), then takes items one at a time
(``queue_claim``), renews its lease while it works (``queue_heartbeat``) and reports each item
(``queue_complete``) until a claim says the queue is drained; ``queue_status`` shows the counts
and who holds what. The semantics are the queue's own (``docs/queue.md``): the first
submission creates the queue and identical ones are no-ops, a lease lapses without heartbeats,
a completion is safe to repeat and refused for a stale lease.

:class:`QueueTools` is a tool group over any :class:`~github_p2p.workqueue.api.WorkQueue`: a
runner daemon's own queues, a daemon's ``/_p2p/queue`` over HTTP, or an in-process local queue
(see :mod:`.surfaces`). A queue is named within a run; calls that give no ``run_id`` or
``attempt`` use the node's ``GITHUB_RUN_ID`` and ``GITHUB_RUN_ATTEMPT`` (:class:`RunDefaults`).
Every queue error becomes an MCP tool error that says what went wrong and what to do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from github_p2p.config import ClientSettings
from github_p2p.core.queue import QueueLimits, QueuePolicy
from github_p2p.core.queueseal import DEFAULT_RUN_ID, PlainSealer, QueueRef
from github_p2p.errors import (
    ConfigError,
    FleetUnavailableError,
    GitHubP2PError,
    QueueConflictError,
    QueueNotFoundError,
    StaleLeaseError,
)
from github_p2p.workqueue.api import Claim, WorkQueue
from github_p2p.workqueue.client import EndpointWorkQueue
from github_p2p.workqueue.local import LocalWorkQueue

__all__ = [
    "DEFAULT_CLAIM_WAIT",
    "MAX_WAIT",
    "QUEUE_TOOLS",
    "STDIO_STORE_FILE",
    "QueueTools",
    "RunDefaults",
    "stdio_queue",
    "tool_error",
]

#: The tools of this group, as a client lists them.
QUEUE_TOOLS: Final = ("queue_submit", "queue_claim", "queue_heartbeat", "queue_complete",
                      "queue_status")
#: Longest a claim or a status call waits: a hub answers no later than this anyway.
MAX_WAIT: Final = QueueLimits.max_wait
#: How long ``queue_claim`` waits by default while others hold every remaining item.
DEFAULT_CLAIM_WAIT: Final = 10.0
#: The queues of ``github-p2p mcp`` without a daemon, in its cache directory: a file of its
#: own, since a daemon on the same directory keeps ``queues.sqlite3`` (one board per store).
STDIO_STORE_FILE: Final = "mcp-queues.sqlite3"
_MAX_HOLDER = 256

_T = TypeVar("_T")

_SUBMIT = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                          open_world_hint=False)
_CLAIM = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                         open_world_hint=False)
_RENEW = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                         open_world_hint=False)
_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)

# What a caller should do about a refusal (a limit's own message says all there is to say).
_ADVICE: Final[tuple[tuple[type[GitHubP2PError], str], ...]] = (
    (QueueConflictError, "every runner must submit the same items in the same order; use "
                         "another name for another list"),
    (QueueNotFoundError, "a queue exists once queue_submit created it; check the name, run_id "
                         "and attempt, and the item id"),
    (StaleLeaseError, "this item is no longer yours: do not report it again, and call "
                      "queue_claim for the next one"),
    (FleetUnavailableError, "the queue is kept at the fleet's hub, which is not reachable "
                            "right now; call again in a few seconds"),
)

_Name = Annotated[str, Field(
    description="The queue's name, such as 'pytest-files': the same on every runner that "
    "shares the work.")]
_RunId = Annotated[str | None, Field(
    description="The workflow run the queue belongs to. Default: this node's GITHUB_RUN_ID "
    "('local' outside GitHub Actions).")]
_Attempt = Annotated[int | None, Field(
    description="The run attempt. Default: this node's GITHUB_RUN_ATTEMPT (1 outside GitHub "
    "Actions). A re-run (attempt 2 or later) submitting the same list replays only the items "
    "that did not succeed before.")]
_ItemId = Annotated[int, Field(ge=0, description="The item's id, as queue_claim returned it.")]
_Token = Annotated[str, Field(
    min_length=1, description="The lease token queue_claim returned with the item.")]


@dataclass(frozen=True)
class RunDefaults:
    """The run a queue belongs to when a call names none: the node's ``GITHUB_RUN_ID`` and
    ``GITHUB_RUN_ATTEMPT``, kept as the environment gives them and checked on use (so a bad
    value refuses the queue calls that rely on it, with a message, and nothing else)."""

    run_id: str = DEFAULT_RUN_ID
    attempt: str = "1"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RunDefaults:
        """From ``GITHUB_RUN_ID`` (else ``local``) and ``GITHUB_RUN_ATTEMPT`` (else 1)."""
        return cls(env.get("GITHUB_RUN_ID", "").strip() or DEFAULT_RUN_ID,
                   env.get("GITHUB_RUN_ATTEMPT", "").strip() or "1")

    def ref(self, name: str, run_id: str | None = None, attempt: int | None = None
            ) -> QueueRef:
        """The queue ``name`` of ``run_id``/``attempt``, or of this run where not given;
        raises :class:`~github_p2p.errors.ConfigError` saying which value is wrong."""
        if attempt is None:
            try:
                attempt = int(self.attempt)
            except ValueError:
                raise ConfigError(f"this node's GITHUB_RUN_ATTEMPT is {self.attempt[:40]!r}, "
                                  "not a number: pass attempt") from None
        return QueueRef(name, self.run_id if run_id is None else run_id, attempt)


def stdio_queue(env: Mapping[str, str]) -> tuple[WorkQueue, Callable[[], None]]:
    """The queues of ``github-p2p mcp`` and how to close them: the daemon's at
    ``GITHUB_P2P_ENDPOINT`` when it is set (shared with the fleet), else this process's own
    (SQLite in the cache directory, no fleet)."""
    settings = ClientSettings.from_env(env)
    if settings.endpoint:
        remote = EndpointWorkQueue(settings.endpoint)
        return remote, remote.client.close
    path = settings.cache_dir / STDIO_STORE_FILE if settings.cache_dir is not None else None
    local = LocalWorkQueue.open(path, sealer=PlainSealer(settings.scope))
    return local, local.close


def _queue_json(ref: QueueRef) -> dict[str, Any]:
    return {"name": ref.name, "run_id": ref.run_id, "attempt": ref.attempt}


def tool_error(exc: GitHubP2PError, ref: QueueRef | None = None) -> ToolError:
    """The MCP tool error for a refused queue call: the reason, naming the queue, and what to
    do about it."""
    message = str(exc)
    if ref is not None and str(ref) not in message:
        message = f"queue {ref}: {message}"
    advice = next((text for kind, text in _ADVICE if isinstance(exc, kind)), None)
    return ToolError(f"{message} ({advice})" if advice else message)


class QueueTools:
    """``queue_submit``, ``queue_claim``, ``queue_heartbeat``, ``queue_complete`` and
    ``queue_status`` over ``queue``, for runs named by ``run`` where a call names none."""

    def __init__(self, queue: WorkQueue, run: RunDefaults | None = None) -> None:
        self.queue = queue
        self.run = run or RunDefaults()

    def register(self, server: MCPServer[Any]) -> None:
        """Add the five queue tools to ``server``."""
        server.add_tool(self.queue_submit, name="queue_submit", annotations=_SUBMIT)
        server.add_tool(self.queue_claim, name="queue_claim", annotations=_CLAIM)
        server.add_tool(self.queue_heartbeat, name="queue_heartbeat", annotations=_RENEW)
        server.add_tool(self.queue_complete, name="queue_complete", annotations=_RENEW)
        server.add_tool(self.queue_status, name="queue_status", annotations=_READ)

    async def queue_submit(
            self, name: _Name,
            items: Annotated[list[str], Field(description="The work items in order (test files, "
                                              "shard names, ...): each one line of text, at "
                                              "most 1024 bytes.")],
            run_id: _RunId = None, attempt: _Attempt = None,
            lease_ttl: Annotated[float, Field(description="Seconds a claim holds an item "
                                              "without a heartbeat (1 to 86400).")] = 60.0,
            max_attempts: Annotated[int, Field(description="Deliveries of one item before it "
                                               "is failed for good (1 to 100).")] = 3,
            retry_failed: Annotated[bool, Field(description="Put an item reported failed back "
                                                "in the queue while attempts remain.")] = False,
    ) -> dict[str, Any]:
        """Create a run's work queue of items, or join it: every runner (or agent) that
        shares the work submits the same list, and only the first submission creates the
        queue; identical ones change nothing, and a different list under the same name is
        refused, naming where the lists differ. The first submitter's lease_ttl, max_attempts
        and retry_failed hold. Returns `created`, `total`, `carried` (items that succeeded in
        an earlier attempt of the run and will not run again) and `mode` (`fleet`: at the
        fleet's hub; `local`: this node alone, with a `notice`). Then call queue_claim.
        """
        ref = self._ref(name, run_id, attempt)
        try:
            policy = QueuePolicy(lease_ttl, max_attempts, retry_failed)
        except ConfigError as exc:
            raise tool_error(exc) from exc
        result = await self._call(ref, self.queue.submit(ref, items, policy))
        return {"queue": _queue_json(ref), **result.to_json()}

    async def queue_claim(
            self, name: _Name, run_id: _RunId = None, attempt: _Attempt = None,
            wait: Annotated[float, Field(ge=0, le=MAX_WAIT, description="Seconds to wait for "
                                         "an item while none is ready but others hold "
                                         f"leases (0 to {MAX_WAIT:g}).")] = DEFAULT_CLAIM_WAIT,
            holder: Annotated[str, Field(max_length=_MAX_HOLDER, description="Your name as "
                                         "queue_status shows it (default: this node's)."
                                         )] = "",
    ) -> dict[str, Any]:
        """Take the next item of a run's work queue, leased to you. With `claimed` true it
        returns the `item`, its `id` and lease `token` (keep both), `lease_ttl` and `attempt`
        (its delivery count): do the work, call queue_heartbeat with id and token well within
        lease_ttl seconds while it runs (else the item goes to someone else), then
        queue_complete. With `claimed` false, nothing could be had within `wait`: if `drained`
        is true every item is done or failed and the work is over; otherwise others hold the
        remaining items, so call queue_claim again (their items come back if they stop).
        """
        ref = self._ref(name, run_id, attempt)
        result = await self._call(ref, self.queue.claim(ref, holder=holder, wait=wait))
        if isinstance(result, Claim):
            return {"claimed": True, "queue": _queue_json(ref), **result.to_json()}
        return {"claimed": False, "queue": _queue_json(ref), "drained": result.drained,
                "status": result.to_json()}

    async def queue_heartbeat(self, name: _Name, id: _ItemId, token: _Token,
                              run_id: _RunId = None, attempt: _Attempt = None) -> dict[str, Any]:
        """Renew your lease on a claimed item while you work on it; returns `expires_in`, the
        seconds the lease now runs. Call it well within the lease (a third of lease_ttl is a
        good interval). An error means the item is no longer yours: stop working on it.
        """
        ref = self._ref(name, run_id, attempt)
        renewal = await self._call(ref, self.queue.heartbeat(ref, id, token))
        return {"queue": _queue_json(ref), "id": renewal.id, "expires_in": renewal.expires_in}

    async def queue_complete(
            self, name: _Name, id: _ItemId, token: _Token,
            ok: Annotated[bool, Field(description="True when the item succeeded, false when "
                                      "it failed.")] = True,
            run_id: _RunId = None, attempt: _Attempt = None,
    ) -> dict[str, Any]:
        """Report a claimed item done (ok true) or failed (ok false), with the id and token
        queue_claim gave. Returns the item's `state` and the `outcome`: `done`, `failed`,
        `retry` (failed, back in the queue for another attempt) or `repeat` (already reported:
        repeating a report is safe and changes nothing). A report on a lease that lapsed while
        someone else took the item is refused. Then call queue_claim for the next item.
        """
        ref = self._ref(name, run_id, attempt)
        done = await self._call(ref, self.queue.complete(ref, id, token, ok=ok))
        return {"queue": _queue_json(ref), "id": done.id, "state": done.state,
                "outcome": done.outcome}

    async def queue_status(
            self, name: _Name, run_id: _RunId = None, attempt: _Attempt = None,
            wait: Annotated[float, Field(ge=0, le=MAX_WAIT, description="Seconds to wait for "
                                         f"the queue to drain (0 to {MAX_WAIT:g}; 0 answers "
                                         "at once).")] = 0.0,
    ) -> dict[str, Any]:
        """A run's work queue: item counts by state (`ready`, `leased`, `done`, `failed`;
        `carried` of the done ones succeeded in an earlier attempt), `total`, `drained` (every
        item done or failed), `mode`, and `holders` (who holds which item id, and for how many
        more seconds).
        """
        ref = self._ref(name, run_id, attempt)
        status = await self._call(ref, self.queue.status(ref, wait=wait))
        return {"queue": _queue_json(ref), **status.to_json()}

    # -- helpers -------------------------------------------------------------------------------

    def _ref(self, name: str, run_id: str | None, attempt: int | None) -> QueueRef:
        try:
            return self.run.ref(name, run_id, attempt)
        except ConfigError as exc:
            raise tool_error(exc) from exc

    @staticmethod
    async def _call(ref: QueueRef, pending: Awaitable[_T]) -> _T:
        try:
            return await pending
        except GitHubP2PError as exc:
            raise tool_error(exc, ref) from exc
