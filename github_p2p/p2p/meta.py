"""Messages to and from their JSON meta and raw payload (pure): the step between the typed
messages of :mod:`github_p2p.p2p.messages` and the frames of :mod:`github_p2p.p2p.wire`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Final

from github_p2p.errors import LocalProtocolError
from github_p2p.p2p.fields import ENTRY_ID_SIZE
from github_p2p.p2p.messages import MESSAGE_TYPES, FrameRejected, Message

__all__ = ["message_from_meta", "message_to_meta"]

_HEX_DIGITS: Final = frozenset("0123456789abcdef")
# The one field that travels as the frame's raw payload instead of inside the JSON meta.
_PAYLOAD: Final = "envelope"


# --- decoding (FrameRejected: the peer broke the contract) ----------------------------------


def _bad(message: str) -> FrameRejected:
    return FrameRejected("bad_message", message)


#: Fields holding 32-byte ids, which travel as hex.
_ID_FIELDS = frozenset({"entry_id", "tag", "queue_id"})


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
        elif item.name in ("stats", "limits"):
            meta[item.name] = dict(value) if value is not None else None
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
