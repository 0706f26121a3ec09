"""Sans-I/O codec of the fleet cache protocol ``/github-p2p/cache/1.0.0``.

No sockets, clocks or trio here: bytes in, messages out, in the spirit of h11. A stream carries
frames both ways; several requests may be in flight, matched to responses by ``rid``.

Frame layout::

    frame   = length:varint  body                  (length = len(body) <= max_frame)
    body    = version:u8  op:u8  meta_len:varint  meta  payload
    version = 1
    meta    = UTF-8 JSON object, meta_len bytes    (meta_len <= max_meta)
    payload = the rest of the body: raw bytes, e.g. a sealed entry (<= max_envelope)

Varints are unsigned LEB128, minimally encoded, at most 10 bytes. ``meta`` holds the small
typed fields: ``rid`` always (``null`` only in an :class:`Error` about the whole stream), 32-byte
ids such as ``entry_id`` as 64 lowercase hex digits. Unknown keys are ignored for forward
compatibility and keys whose value may be ``null`` may be left out; duplicate keys and
NaN/Infinity are refused. Ops (requests below ``0x80``, responses from it):

=======  ==============  =======  ====================
op       request         op       response
=======  ==============  =======  ====================
``01``   Hello           ``80``   Ok
``02``   Get             ``81``   Entry (payload)
``03``   Put (payload)   ``82``   NotFound
``04``   Delete          ``83``   LeaseReply (payload)
``05``   Lease           ``84``   StatsReply
``06``   Release         ``85``   PeersReply
``07``   StatsQuery      ``FF``   Error
``08``   PeersQuery
``09``   Report
=======  ==============  =======  ====================

Usage::

    decoder = FrameDecoder(limits)
    decoder.receive_data(chunk)          # b"" signals EOF
    while (msg := decoder.next_message()) is not None:
        ...                              # FrameRejected (a RemoteProtocolError) on a bad frame
    stream.write(encode(reply, limits))  # LocalProtocolError if reply cannot be sent

A :class:`FrameRejected` with ``fatal`` false dropped just one frame: answer it with
:func:`error_reply_for` and go on. With ``fatal`` true the framing is lost: send the reply if
you like, then reset the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from github_p2p.errors import ConfigError, LocalProtocolError, RemoteProtocolError
from github_p2p.p2p.messages import (
    ENTRY_ID_SIZE,
    ERROR_CODES,
    LEASE_OUTCOMES,
    MAX_ERROR_MESSAGE,
    MAX_LEASE_WAIT,
    MAX_RID,
    MAX_TEXT,
    MESSAGE_TYPES,
    REQUEST_TYPES,
    RESPONSE_TYPES,
    ROLES,
    Delete,
    Entry,
    Error,
    ErrorCode,
    FrameRejected,
    Get,
    Hello,
    Lease,
    LeaseOutcome,
    LeaseReply,
    LimitNote,
    Message,
    NotFound,
    Ok,
    PeersQuery,
    PeersReply,
    Put,
    Release,
    Report,
    Request,
    Response,
    Role,
    Scalar,
    StatsQuery,
    StatsReply,
)
from github_p2p.p2p.meta import message_from_meta, message_to_meta

__all__ = [
    "ENTRY_ID_SIZE",
    "ERROR_CODES",
    "LEASE_OUTCOMES",
    "MAX_ERROR_MESSAGE",
    "MAX_LEASE_WAIT",
    "MAX_RID",
    "MAX_TEXT",
    "MESSAGE_TYPES",
    "PROTOCOL_ID",
    "REQUEST_TYPES",
    "RESPONSE_TYPES",
    "ROLES",
    "WIRE_VERSION",
    "Delete",
    "Entry",
    "Error",
    "ErrorCode",
    "FrameDecoder",
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
    "WireLimits",
    "decode_body",
    "encode",
    "error_reply_for",
]

#: The libp2p protocol id streams of this codec are opened with.
PROTOCOL_ID: Final = "/github-p2p/cache/1.0.0"
#: The ``version`` byte of every frame body.
WIRE_VERSION: Final = 1
_MAX_VARINT: Final = 10  # bytes of an unsigned 64-bit LEB128
_KiB: Final = 1024
_MiB: Final = 1024 * _KiB


@dataclass(frozen=True)
class WireLimits:
    """Hard size bounds, shared by both ends of a stream (bytes).

    ``max_frame`` bounds a frame body, and so the decoder's incomplete buffer; ``max_meta`` the
    JSON meta; ``max_envelope`` the payload (a sealed entry). A full envelope plus a small meta
    fits in the default ``max_frame``. ``max_meta`` is large enough for a :class:`PeersReply`
    listing about a thousand runners.
    """

    max_frame: int = 4 * _MiB + 64 * _KiB
    max_meta: int = 256 * _KiB
    max_envelope: int = 4 * _MiB

    def __post_init__(self) -> None:
        for name in ("max_frame", "max_meta", "max_envelope"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"WireLimits.{name} must be a positive integer")
        if self.max_meta >= self.max_frame or self.max_envelope >= self.max_frame:
            raise ConfigError("WireLimits: max_meta and max_envelope must be < max_frame")
        if self.max_frame >= 2**63:
            raise ConfigError("WireLimits.max_frame must be below 2**63")


_DEFAULT_LIMITS: Final = WireLimits()


# --- varints ----------------------------------------------------------------------------------


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(
    data: bytes | bytearray, pos: int, *, fatal: bool, what: str
) -> tuple[int, int] | None:
    """Read a varint at ``pos``: ``(value, end)``, or ``None`` when ``data`` stops inside it."""
    value = 0
    for index in range(_MAX_VARINT):
        if pos + index >= len(data):
            return None
        byte = data[pos + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            if byte == 0 and index > 0:
                raise FrameRejected("bad_message", f"non-minimal varint {what}", fatal=fatal)
            return value, pos + index + 1
    raise FrameRejected("bad_message", f"varint {what} is longer than 10 bytes", fatal=fatal)


# --- bodies -----------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in meta")  # two parsers could pick different values
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_meta(raw: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_refuse_constant,
        )
    except UnicodeDecodeError as exc:
        raise FrameRejected("bad_message", "meta is not UTF-8") from exc
    # ValueError covers syntax, duplicates, NaN and over-long integer literals; deep nesting
    # exhausts the parser's recursion instead.
    except (ValueError, RecursionError) as exc:
        raise FrameRejected("bad_message", "meta is not valid JSON") from exc
    if not isinstance(meta, dict):
        raise FrameRejected("bad_message", "meta is not a JSON object")
    return meta


def _peek_rid(meta: dict[str, Any]) -> int | None:
    rid = meta.get("rid")
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= MAX_RID:
        return rid
    return None


def decode_body(body: bytes, limits: WireLimits = _DEFAULT_LIMITS) -> Message:
    """Decode one frame body (the bytes after the length prefix).

    Raises :class:`FrameRejected` (never fatal) with the frame's ``rid`` when it could be read.
    """
    if len(body) > limits.max_frame:
        raise FrameRejected("too_large", f"frame of {len(body)} bytes exceeds max_frame")
    if len(body) < 2:
        raise FrameRejected("bad_message", "frame body is shorter than its header")
    if body[0] != WIRE_VERSION:
        # Another version may lay out its body differently: do not guess at its rid.
        raise FrameRejected("bad_version", f"unsupported wire version {body[0]}")
    op = body[1]
    header = _read_varint(body, 2, fatal=False, what="meta length")
    if header is None:
        raise FrameRejected("bad_message", "frame body ends inside the meta length")
    meta_len, start = header
    if meta_len > limits.max_meta:
        raise FrameRejected("too_large", f"meta of {meta_len} bytes exceeds max_meta")
    end = start + meta_len
    if end > len(body):
        raise FrameRejected("bad_message", "meta length runs past the end of the frame")
    meta = _parse_meta(body[start:end])
    rid = _peek_rid(meta)
    if len(body) - end > limits.max_envelope:
        raise FrameRejected("too_large", "payload exceeds max_envelope", rid=rid)
    try:
        return message_from_meta(op, meta, body[end:])
    except FrameRejected as exc:
        raise FrameRejected(exc.code, str(exc), rid=rid) from exc


def encode(message: Message, limits: WireLimits = _DEFAULT_LIMITS) -> bytes:
    """The complete frame (length prefix included) that carries ``message``.

    Raises :class:`~github_p2p.errors.LocalProtocolError` when it exceeds ``limits``.
    """
    if not isinstance(message, REQUEST_TYPES + RESPONSE_TYPES):
        raise LocalProtocolError(f"cannot encode {type(message).__name__}")
    fields, payload = message_to_meta(message)
    meta = json.dumps(fields, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    if len(meta) > limits.max_meta:
        raise LocalProtocolError(f"meta of {len(meta)} bytes exceeds max_meta")
    if len(payload) > limits.max_envelope:
        raise LocalProtocolError(f"payload of {len(payload)} bytes exceeds max_envelope")
    header = bytes((WIRE_VERSION, message.OP)) + _encode_varint(len(meta))
    size = len(header) + len(meta) + len(payload)
    if size > limits.max_frame:
        raise LocalProtocolError(f"frame of {size} bytes exceeds max_frame")
    return b"".join((_encode_varint(size), header, meta, payload))


def error_reply_for(exc: RemoteProtocolError) -> Error:
    """The :class:`Error` to answer a rejected frame with (``rid`` ``None`` if unknown)."""
    code: ErrorCode = "bad_message"
    rid = None
    if isinstance(exc, FrameRejected):
        code, rid = exc.code, exc.rid
    text = "".join(char if char.isprintable() else "?" for char in str(exc))
    return Error(rid, code, text[:MAX_ERROR_MESSAGE])


# --- the stream decoder -----------------------------------------------------------------------


class FrameDecoder:
    """Turns the bytes of one stream into messages, one frame at a time.

    Only the frame being received is buffered, and a length prefix above ``max_frame`` is
    refused as soon as it is read, so a peer cannot make the buffer grow past
    ``max_frame + 10`` bytes plus the chunk last given to :meth:`receive_data` (call
    :meth:`next_message` until it returns ``None`` before receiving more).
    """

    def __init__(self, limits: WireLimits = _DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._frame: tuple[int, int] | None = None  # (body start, body end) once prefix is read
        self._eof = False
        self._failure: FrameRejected | None = None

    @property
    def limits(self) -> WireLimits:
        """The bounds this decoder enforces."""
        return self._limits

    @property
    def pending(self) -> int:
        """Bytes this decoder will hold once the frame it is receiving is complete: the frame's
        end when its length prefix has been read, else what it holds now (a receiver can
        budget a peer's partial frames with it)."""
        if self._frame is None:
            return len(self._buffer)
        return max(self._frame[1], len(self._buffer))

    @property
    def closed(self) -> bool:
        """EOF was received and every frame before it has been returned."""
        return self._eof and not self._buffer and self._failure is None

    def receive_data(self, data: bytes) -> None:
        """Add bytes received from the peer; ``b""`` means the peer closed its side."""
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after EOF")
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_message(self) -> Message | None:
        """The next complete message, or ``None`` until more data (or EOF) arrives.

        Raises :class:`FrameRejected`: with ``fatal`` false the bad frame has been skipped and
        the next call goes on with the following one; with ``fatal`` true every later call
        raises again.
        """
        if self._failure is not None:
            raise FrameRejected(
                self._failure.code, str(self._failure), rid=self._failure.rid, fatal=True
            )
        try:
            return self._next()
        except FrameRejected as exc:
            if exc.fatal:
                self._failure = exc
            raise

    def _next(self) -> Message | None:
        buffer = self._buffer
        if self._frame is None:
            prefix = _read_varint(buffer, 0, fatal=True, what="frame length")
            if prefix is None:
                if self._eof and buffer:
                    raise FrameRejected("bad_message", "EOF inside a frame header", fatal=True)
                return None
            size, start = prefix
            if size > self._limits.max_frame:
                raise FrameRejected(
                    "too_large", f"frame of {size} bytes exceeds max_frame", fatal=True
                )
            self._frame = (start, start + size)
        start, end = self._frame
        if len(buffer) < end:
            if self._eof:
                raise FrameRejected("bad_message", "EOF inside a frame", fatal=True)
            return None
        with memoryview(buffer) as view:  # one copy of the body, not two
            body = bytes(view[start:end])
        del buffer[:end]  # bytearray drops a prefix in O(1)
        self._frame = None
        return decode_body(body, self._limits)
