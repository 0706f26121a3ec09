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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Final, Literal, NoReturn, TypeAlias, get_args

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "ENTRY_ID_SIZE",
    "ERROR_CODES",
    "LEASE_OUTCOMES",
    "MAX_ERROR_MESSAGE",
    "MAX_LEASE_WAIT",
    "MAX_RID",
    "MAX_TEXT",
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
    "message_from_meta",
    "message_to_meta",
]

#: Size of an entry id (an HMAC-SHA256); it travels as 64 lowercase hex characters.
ENTRY_ID_SIZE: Final = 32
#: Request ids are unsigned 32-bit integers chosen by the requester.
MAX_RID: Final = 2**32 - 1
#: Bound on every short string (names, versions, tokens, stats keys and values).
MAX_TEXT: Final = 256
#: Bound on the human-readable text of an :class:`Error`.
MAX_ERROR_MESSAGE: Final = 1024
#: Longest a :class:`Lease` may ask the hub to wait for another runner's fill, in seconds.
MAX_LEASE_WAIT: Final = 60.0
# Integers in stats and peer records must fit a signed 64-bit slot in any implementation.
_MAX_SCALAR_INT: Final = 2**63 - 1

Role: TypeAlias = Literal["runner", "bootstrap"]
LeaseOutcome: TypeAlias = Literal["hit", "granted", "filled", "timeout"]
ErrorCode: TypeAlias = Literal[
    "bad_version", "unknown_op", "bad_message", "too_large", "not_found", "busy", "internal"
]
#: A value of a stats or peer record.
Scalar: TypeAlias = int | float | str

ROLES: Final[frozenset[str]] = frozenset(get_args(Role))
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


# --- validation (LocalProtocolError: whoever built the message broke the contract) -----------


def _fail(message: str) -> NoReturn:
    raise LocalProtocolError(message)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def _check_rid(rid: object) -> None:
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= MAX_RID:
        _fail("rid must be an integer in 0..2**32-1")


def _check_entry_id(value: object) -> None:
    if not isinstance(value, bytes) or len(value) != ENTRY_ID_SIZE:
        _fail(f"entry_id must be {ENTRY_ID_SIZE} bytes")


def _check_text(value: object, name: str, *, limit: int = MAX_TEXT, empty: bool = False) -> None:
    if not isinstance(value, str):
        _fail(f"{name} must be a string")
    if not (0 if empty else 1) <= len(value) <= limit:
        _fail(f"{name} must be {0 if empty else 1}..{limit} characters")
    # Printable only: these strings end up in logs and on the dashboard. This also rules out
    # lone surrogates, which could not be encoded as UTF-8.
    if not value.isprintable():
        _fail(f"{name} must be printable text")


def _check_choice(value: object, name: str, choices: frozenset[str]) -> None:
    if not isinstance(value, str) or value not in choices:
        _fail(f"{name} must be one of {', '.join(sorted(choices))}")


def _check_flag(value: object, name: str) -> None:
    if not isinstance(value, bool):
        _fail(f"{name} must be a boolean")


def _number(value: object, name: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:
        _fail(f"{name} is out of range")
    if not math.isfinite(number) or not low <= number <= high:
        _fail(f"{name} must be a finite number in [{low:g}, {high:g}]")
    return number


def _blob(value: object, name: str, *, empty: bool) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        _fail(f"{name} must be bytes")
    data = bytes(value)
    if not data and not empty:
        _fail(f"{name} must not be empty")
    return data


def _record(value: object, name: str) -> Mapping[str, Scalar]:
    if not isinstance(value, Mapping):
        _fail(f"{name} must be an object")
    for key, item in value.items():
        _check_text(key, f"a key of {name}")
        if isinstance(item, str):
            _check_text(item, f"{name}[{key}]", empty=True)
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -_MAX_SCALAR_INT - 1 <= item <= _MAX_SCALAR_INT:
                _fail(f"{name}[{key}] does not fit 64 bits")
        elif isinstance(item, float):
            _number(item, f"{name}[{key}]", -math.inf)
        else:
            _fail(f"{name}[{key}] must be a string or a number")
    return MappingProxyType(dict(value))


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """A peer introduces itself; answered by :class:`Ok`."""

    OP: ClassVar[int] = 0x01
    rid: int
    role: Role
    arch: str
    runner: str
    version: str

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_choice(self.role, "role", ROLES)
        _check_text(self.arch, "arch")
        _check_text(self.runner, "runner")
        _check_text(self.version, "version")


@dataclass(frozen=True)
class Get:
    """Ask for an entry; answered by :class:`Entry` or :class:`NotFound`."""

    OP: ClassVar[int] = 0x02
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)


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
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)
        _set(self, "envelope", _blob(self.envelope, "envelope", empty=False))
        _set(self, "fresh_ttl", _number(self.fresh_ttl, "fresh_ttl"))
        _set(self, "keep_ttl", _number(self.keep_ttl, "keep_ttl", self.fresh_ttl))
        if self.lease_token is not None:
            _check_text(self.lease_token, "lease_token")
        if self.tag is not None:
            _check_entry_id(self.tag)


@dataclass(frozen=True)
class Delete:
    """Drop an entry fleet-wide (a write went through); answered by :class:`Ok`."""

    OP: ClassVar[int] = 0x04
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)


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
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)
        _set(self, "wait", _number(self.wait, "wait", 0.0, MAX_LEASE_WAIT))


@dataclass(frozen=True)
class Release:
    """Give a fill lease back without filling (GitHub failed); answered by :class:`Ok`."""

    OP: ClassVar[int] = 0x06
    rid: int
    entry_id: bytes
    lease_token: str

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)
        _check_text(self.lease_token, "lease_token")


@dataclass(frozen=True)
class StatsQuery:
    """Ask for the hub's counters; answered by :class:`StatsReply`."""

    OP: ClassVar[int] = 0x07
    rid: int

    def __post_init__(self) -> None:
        _check_rid(self.rid)


@dataclass(frozen=True)
class PeersQuery:
    """Ask for the peers the hub knows; answered by :class:`PeersReply`."""

    OP: ClassVar[int] = 0x08
    rid: int

    def __post_init__(self) -> None:
        _check_rid(self.rid)


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
        _check_rid(self.rid)
        _set(self, "stats", _record(self.stats, "stats"))


@dataclass(frozen=True)
class Ok:
    """The request ``rid`` succeeded and has nothing else to say."""

    OP: ClassVar[int] = 0x80
    rid: int

    def __post_init__(self) -> None:
        _check_rid(self.rid)


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
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)
        _set(self, "envelope", _blob(self.envelope, "envelope", empty=False))
        _check_flag(self.fresh, "fresh")
        _set(self, "age", _number(self.age, "age"))


@dataclass(frozen=True)
class NotFound:
    """The hub holds no entry under ``entry_id``."""

    OP: ClassVar[int] = 0x82
    rid: int
    entry_id: bytes

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)


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

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _check_entry_id(self.entry_id)
        _check_choice(self.outcome, "outcome", LEASE_OUTCOMES)
        _set(self, "envelope", _blob(self.envelope, "envelope", empty=True))
        _check_flag(self.fresh, "fresh")
        _set(self, "lease_ttl", _number(self.lease_ttl, "lease_ttl"))
        if self.outcome in ("hit", "filled") and not self.envelope:
            _fail(f"a {self.outcome!r} lease reply needs an envelope")
        if self.fresh and not self.envelope:
            _fail("fresh is meaningless without an envelope")
        if (self.lease_token is not None) != (self.outcome == "granted"):
            _fail("lease_token comes with the 'granted' outcome and only with it")
        if self.lease_token is not None:
            _check_text(self.lease_token, "lease_token")


@dataclass(frozen=True)
class StatsReply:
    """The hub's counters by name (a read-only mapping)."""

    OP: ClassVar[int] = 0x84
    rid: int
    stats: Mapping[str, Scalar]

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        _set(self, "stats", _record(self.stats, "stats"))


@dataclass(frozen=True)
class PeersReply:
    """The peers the hub knows, one read-only record each (peer id, role, arch, last seen...)."""

    OP: ClassVar[int] = 0x85
    rid: int
    peers: Sequence[Mapping[str, Scalar]]

    def __post_init__(self) -> None:
        _check_rid(self.rid)
        if not isinstance(self.peers, list | tuple):
            _fail("peers must be a list")
        _set(self, "peers", tuple(_record(peer, "a peer record") for peer in self.peers))


@dataclass(frozen=True)
class Error:
    """The request ``rid`` failed; ``rid`` is ``None`` for an error about the whole stream."""

    OP: ClassVar[int] = 0xFF
    rid: int | None
    code: ErrorCode
    message: str = ""

    def __post_init__(self) -> None:
        if self.rid is not None:
            _check_rid(self.rid)
        _check_choice(self.code, "code", ERROR_CODES)
        _check_text(self.message, "message", limit=MAX_ERROR_MESSAGE, empty=True)


Request: TypeAlias = (
    Hello | Get | Put | Delete | Lease | Release | StatsQuery | PeersQuery | Report
)
Response: TypeAlias = Ok | Entry | NotFound | LeaseReply | StatsReply | PeersReply | Error
Message: TypeAlias = Request | Response

#: Message classes a runner sends, for ``isinstance`` checks.
REQUEST_TYPES: Final = (
    Hello, Get, Put, Delete, Lease, Release, StatsQuery, PeersQuery, Report
)
#: Message classes the hub answers with.
RESPONSE_TYPES: Final = (Ok, Entry, NotFound, LeaseReply, StatsReply, PeersReply, Error)
#: Every message class by its op number.
MESSAGE_TYPES: Final[Mapping[int, type[Message]]] = MappingProxyType(
    {cls.OP: cls for cls in (*REQUEST_TYPES, *RESPONSE_TYPES)}
)


# --- decoding (FrameRejected: the peer broke the contract) ----------------------------------


def _bad(message: str) -> FrameRejected:
    return FrameRejected("bad_message", message)


#: Fields holding 32-byte ids, which travel as hex.
_ID_FIELDS = frozenset({"entry_id", "tag"})


def _hex_id(text: object, name: str) -> bytes:
    if (
        not isinstance(text, str)
        or len(text) != 2 * ENTRY_ID_SIZE
        or not _HEX_DIGITS.issuperset(text)
    ):
        raise _bad(f"{name} must be {2 * ENTRY_ID_SIZE} lowercase hex digits")
    return bytes.fromhex(text)


def message_to_meta(message: Message) -> tuple[dict[str, Any], bytes]:
    """Split ``message`` into its JSON-ready meta and its raw payload (its envelope, if any)."""
    meta: dict[str, Any] = {}
    payload = b""
    for item in fields(message):
        value = getattr(message, item.name)
        if item.name == _PAYLOAD:
            payload = value
        elif item.name in _ID_FIELDS:
            meta[item.name] = value.hex() if value is not None else None
        elif item.name == "stats":
            meta["stats"] = dict(value)
        elif item.name == "peers":
            meta["peers"] = [dict(peer) for peer in value]
        else:
            meta[item.name] = value
    return meta, payload


def message_from_meta(op: int, meta: Mapping[str, Any], payload: bytes) -> Message:
    """Build the message of ``op`` from its decoded JSON ``meta`` and raw ``payload``.

    Unknown meta keys are ignored; a key whose value may be null may be left out. Raises
    :class:`FrameRejected` (code ``unknown_op`` or ``bad_message``, ``rid`` not set) when
    ``op``, ``meta`` or ``payload`` do not make a valid message.
    """
    cls = MESSAGE_TYPES.get(op)
    if cls is None:
        raise FrameRejected("unknown_op", f"unknown op 0x{op:02x}")
    args: dict[str, Any] = {}
    for item in fields(cls):
        if item.name == _PAYLOAD:
            args[_PAYLOAD] = payload
        elif item.name in meta:
            value = meta[item.name]
            is_id = item.name in _ID_FIELDS and value is not None
            args[item.name] = _hex_id(value, item.name) if is_id else value
        elif item.default is not None:
            raise _bad(f"missing field {item.name!r}")
    if payload and _PAYLOAD not in args:
        raise _bad(f"{cls.__name__} carries no payload")
    try:
        return cls(**args)
    except LocalProtocolError as exc:
        raise _bad(str(exc)) from exc
