"""Typed messages of the fleet cache protocol ``/github-p2p/cache/1.0.0`` (pure, no I/O).

Each message is a frozen dataclass whose bounds are checked once, in ``__post_init__``: building
an invalid message raises :class:`~github_p2p.errors.LocalProtocolError`. The same constructors
validate what a peer sent; :func:`message_from_meta` turns their complaints into
:class:`FrameRejected`, a :class:`~github_p2p.errors.RemoteProtocolError` that carries the
``code`` and ``rid`` of the :class:`Error` reply to send. The framing lives in
:mod:`github_p2p.p2p.wire`.

Requests (runner to hub) have ops ``0x01..0x7f``; responses (hub to runner) have the high bit
set. Each message class names its op in ``OP``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, Final, Literal, TypeAlias, get_args

from github_p2p.errors import RemoteProtocolError
from github_p2p.p2p.fields import (
    ENTRY_ID_SIZE,
    MAX_RID,
    MAX_TEXT,
    MAX_TOKEN,
    Scalar,
    blob,
    check_choice,
    check_entry_id,
    check_flag,
    check_rid,
    check_text,
    check_token,
    fail,
    number,
    record,
    set_field,
)
from github_p2p.p2p.queue_messages import (
    QUEUE_REQUEST_TYPES,
    QUEUE_RESPONSE_TYPES,
    QueueRequest,
    QueueResponse,
)

__all__ = [
    "ENTRY_ID_SIZE",
    "ERROR_CODES",
    "LEASE_OUTCOMES",
    "LIMIT_RESOURCES",
    "MAX_ERROR_MESSAGE",
    "MAX_LEASE_WAIT",
    "MAX_RID",
    "MAX_TEXT",
    "MAX_TOKEN",
    "MESSAGE_TYPES",
    "REQUEST_TYPES",
    "RESPONSE_TYPES",
    "ROLES",
    "Delete",
    "Entry",
    "Error",
    "ErrorCode",
    "FrameRejected",
    "Get",
    "Hello",
    "Lease",
    "LeaseOutcome",
    "LeaseReply",
    "LimitNote",
    "Message",
    "NotFound",
    "Ok",
    "PeersQuery",
    "PeersReply",
    "Put",
    "Release",
    "Report",
    "Request",
    "Response",
    "Role",
    "Scalar",
    "StatsQuery",
    "StatsReply",
]

#: Bound on the human-readable text of an :class:`Error`.
MAX_ERROR_MESSAGE: Final = 1024
#: Longest a :class:`Lease` may ask the hub to wait for another runner's fill, in seconds.
MAX_LEASE_WAIT: Final = 60.0

Role: TypeAlias = Literal["runner", "bootstrap"]
LeaseOutcome: TypeAlias = Literal["hit", "granted", "filled", "timeout"]
ErrorCode: TypeAlias = Literal[
    "bad_version", "unknown_op", "bad_message", "too_large", "not_found", "busy", "internal",
    "unauthorized",
]

ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
#: The rate-limit budgets a :class:`LimitNote` may name (``x-ratelimit-resource`` values).
LIMIT_RESOURCES: Final[frozenset[str]] = frozenset({"core", "search", "graphql"})
LEASE_OUTCOMES: Final[frozenset[str]] = frozenset(get_args(LeaseOutcome))
ERROR_CODES: Final[frozenset[str]] = frozenset(get_args(ErrorCode))
_HEX_DIGITS: Final = frozenset("0123456789abcdef")
# The one field that travels as the frame's raw payload instead of inside the JSON meta.
_PAYLOAD: Final = "envelope"


class FrameRejected(RemoteProtocolError):
    """A peer sent a frame we refuse, with what is needed to answer it.

    ``code`` (one of :data:`ERROR_CODES`) and ``rid`` (the request id when it could be read,
    else ``None``) make the :class:`Error` reply (see ``wire.error_reply_for``). ``fatal`` is
    true when the framing itself is lost (bad length prefix, EOF inside a frame): the stream
    must then be reset. When false, only this frame was dropped and the stream can go on.
    """

    def __init__(
        self, code: ErrorCode, message: str, *, rid: int | None = None, fatal: bool = False
    ) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.rid = rid
        self.fatal = fatal


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A peer introduces itself; answered by :class:`Ok`, or by an :class:`Error`
    ``unauthorized`` when the hub admits runners only with a GitHub Actions OIDC ``token`` (a
    JWT, at most :data:`MAX_TOKEN` characters) and this one has none it accepts. A stream
    carries one identity: the hub reads the token of the stream's first accepted ``Hello``."""

    OP: ClassVar[int] = 0x01
    rid: int
    role: Role
    arch: str
    runner: str
    version: str
    token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_choice(self.role, "role", ROLES)
        check_text(self.arch, "arch")
        check_text(self.runner, "runner")
        check_text(self.version, "version")
        if self.token is not None:
            check_token(self.token, "token")


@dataclass(frozen=True)
class Get:
    """Ask for an entry; answered by :class:`Entry` or :class:`NotFound`."""

    OP: ClassVar[int] = 0x02
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)


@dataclass(frozen=True)
class Put:
    """Store a sealed entry; answered by :class:`Ok`.

    ``lease_token`` is the fill lease this put completes, if any (see :class:`Lease`).
    ``tag`` is an optional second 32-byte id (the HMAC of the resource): a :class:`Delete` of
    the tag removes every entry put with it, so a write invalidates all variants of a resource.
    """

    OP: ClassVar[int] = 0x03
    rid: int
    entry_id: bytes
    envelope: bytes = field(repr=False)
    fresh_ttl: float
    keep_ttl: float
    lease_token: str | None = None
    tag: bytes | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)
        set_field(self, "envelope", blob(self.envelope, "envelope", empty=False))
        set_field(self, "fresh_ttl", number(self.fresh_ttl, "fresh_ttl"))
        set_field(self, "keep_ttl", number(self.keep_ttl, "keep_ttl", self.fresh_ttl))
        if self.lease_token is not None:
            check_text(self.lease_token, "lease_token")
        if self.tag is not None:
            check_entry_id(self.tag)


@dataclass(frozen=True)
class Delete:
    """Drop an entry fleet-wide (a write went through); answered by :class:`Ok`."""

    OP: ClassVar[int] = 0x04
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)


@dataclass(frozen=True)
class Lease:
    """Get an entry, or the right to fill it, waiting up to ``wait`` s for another filler.

    Answered by :class:`LeaseReply`.
    """

    OP: ClassVar[int] = 0x05
    rid: int
    entry_id: bytes
    wait: float

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)
        set_field(self, "wait", number(self.wait, "wait", 0.0, MAX_LEASE_WAIT))


@dataclass(frozen=True)
class Release:
    """Give a fill lease back without filling (GitHub failed); answered by :class:`Ok`."""

    OP: ClassVar[int] = 0x06
    rid: int
    entry_id: bytes
    lease_token: str

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)
        check_text(self.lease_token, "lease_token")


@dataclass(frozen=True)
class StatsQuery:
    """Ask for the hub's counters; answered by :class:`StatsReply`."""

    OP: ClassVar[int] = 0x07
    rid: int

    def __post_init__(self) -> None:
        check_rid(self.rid)


@dataclass(frozen=True)
class PeersQuery:
    """Ask for the peers the hub knows; answered by :class:`PeersReply`."""

    OP: ClassVar[int] = 0x08
    rid: int

    def __post_init__(self) -> None:
        check_rid(self.rid)


@dataclass(frozen=True)
class Report:
    """A runner's own counters (a snapshot, not a delta); answered by :class:`Ok`.

    Runners make the calls to GitHub, so only they know what the fleet spent and saved; each
    sends its latest snapshot now and then and the hub totals them for its dashboard.
    """

    OP: ClassVar[int] = 0x09
    rid: int
    stats: Mapping[str, Scalar]

    def __post_init__(self) -> None:
        check_rid(self.rid)
        set_field(self, "stats", record(self.stats, "stats"))


@dataclass(frozen=True)
class LimitNote:
    """GitHub answered a secondary rate limit for ``resource`` that holds until ``until``
    (epoch seconds); answered by :class:`Ok`. The hub hands its live limits to every lease
    reply, so the fleet sends one probe rather than a burst."""

    OP: ClassVar[int] = 0x0F
    rid: int
    resource: str
    until: float

    def __post_init__(self) -> None:
        check_rid(self.rid)
        # Only the budgets runners meet: a member cannot fill the hub's table (and every lease
        # reply) with made-up names.
        check_choice(self.resource, "resource", LIMIT_RESOURCES)
        set_field(self, "until", number(self.until, "until"))


@dataclass(frozen=True)
class Ok:
    """The request ``rid`` succeeded and has nothing else to say."""

    OP: ClassVar[int] = 0x80
    rid: int

    def __post_init__(self) -> None:
        check_rid(self.rid)


@dataclass(frozen=True)
class Entry:
    """A stored sealed entry; ``age`` is seconds since it was put, ``fresh`` its TTL state."""

    OP: ClassVar[int] = 0x81
    rid: int
    entry_id: bytes
    envelope: bytes = field(repr=False)
    fresh: bool
    age: float

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)
        set_field(self, "envelope", blob(self.envelope, "envelope", empty=False))
        check_flag(self.fresh, "fresh")
        set_field(self, "age", number(self.age, "age"))


@dataclass(frozen=True)
class NotFound:
    """The hub holds no entry under ``entry_id``."""

    OP: ClassVar[int] = 0x82
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)


@dataclass(frozen=True)
class LeaseReply:
    """How a :class:`Lease` ended.

    * ``hit``: a fresh entry was there (``envelope``);
    * ``filled``: another runner filled it while we waited (``envelope``);
    * ``granted``: the asker must fill it, proving it with ``lease_token`` (valid for
      ``lease_ttl`` s) in :class:`Put` or :class:`Release`;
    * ``timeout``: the wait ran out.

    With ``granted`` and ``timeout`` a stale entry may ride along (``fresh`` false) so the asker
    can serve stale-if-error. ``lease_token`` is present exactly when the outcome is
    ``granted``.
    """

    OP: ClassVar[int] = 0x83
    rid: int
    entry_id: bytes
    outcome: LeaseOutcome
    envelope: bytes = field(default=b"", repr=False)
    fresh: bool = False
    lease_token: str | None = None
    lease_ttl: float = 0.0
    #: Rate limits the fleet reported that still hold: resource → until (epoch seconds).
    limits: Mapping[str, Scalar] | None = None

    def __post_init__(self) -> None:
        check_rid(self.rid)
        check_entry_id(self.entry_id)
        check_choice(self.outcome, "outcome", LEASE_OUTCOMES)
        if self.limits is not None:
            set_field(self, "limits", record(self.limits, "limits"))
            if len(self.limits) > 8 or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in self.limits.values()):
                fail("limits must be at most 8 numbers")
        set_field(self, "envelope", blob(self.envelope, "envelope", empty=True))
        check_flag(self.fresh, "fresh")
        set_field(self, "lease_ttl", number(self.lease_ttl, "lease_ttl"))
        if self.outcome in ("hit", "filled") and not self.envelope:
            fail(f"a {self.outcome!r} lease reply needs an envelope")
        if self.fresh and not self.envelope:
            fail("fresh is meaningless without an envelope")
        if (self.lease_token is not None) != (self.outcome == "granted"):
            fail("lease_token comes with the 'granted' outcome and only with it")
        if self.lease_token is not None:
            check_text(self.lease_token, "lease_token")


@dataclass(frozen=True)
class StatsReply:
    """The hub's counters by name (a read-only mapping)."""

    OP: ClassVar[int] = 0x84
    rid: int
    stats: Mapping[str, Scalar]

    def __post_init__(self) -> None:
        check_rid(self.rid)
        set_field(self, "stats", record(self.stats, "stats"))


@dataclass(frozen=True)
class PeersReply:
    """The peers the hub knows, one read-only record each (peer id, role, arch, last seen...)."""

    OP: ClassVar[int] = 0x85
    rid: int
    peers: Sequence[Mapping[str, Scalar]]

    def __post_init__(self) -> None:
        check_rid(self.rid)
        if not isinstance(self.peers, list | tuple):
            fail("peers must be a list")
        set_field(self, "peers", tuple(record(peer, "a peer record") for peer in self.peers))


@dataclass(frozen=True)
class Error:
    """The request ``rid`` failed; ``rid`` is ``None`` for an error about the whole stream."""

    OP: ClassVar[int] = 0xFF
    rid: int | None
    code: ErrorCode
    message: str = ""

    def __post_init__(self) -> None:
        if self.rid is not None:
            check_rid(self.rid)
        check_choice(self.code, "code", ERROR_CODES)
        check_text(self.message, "message", limit=MAX_ERROR_MESSAGE, empty=True)


# The work-queue messages live in their own module (p2p/queue_messages.py), ops 0x10/0x90 up.
Request: TypeAlias = (
    Hello | Get | Put | Delete | Lease | Release | StatsQuery | PeersQuery | Report | LimitNote
    | QueueRequest
)
Response: TypeAlias = (
    Ok | Entry | NotFound | LeaseReply | StatsReply | PeersReply | Error | QueueResponse
)
Message: TypeAlias = Request | Response

#: Message classes a runner sends, for ``isinstance`` checks.
REQUEST_TYPES: Final = (
    Hello, Get, Put, Delete, Lease, Release, StatsQuery, PeersQuery, Report, LimitNote,
    *QUEUE_REQUEST_TYPES,
)
#: Message classes the hub answers with.
RESPONSE_TYPES: Final = (
    Ok, Entry, NotFound, LeaseReply, StatsReply, PeersReply, Error, *QUEUE_RESPONSE_TYPES,
)
#: Every message class by its op number.
MESSAGE_TYPES: Final[Mapping[int, type[Message]]] = MappingProxyType(
    {cls.OP: cls for cls in (*REQUEST_TYPES, *RESPONSE_TYPES)}
)
