"""Field checks of the fleet protocol's messages (pure).

Each check raises :class:`~github_p2p.errors.LocalProtocolError`: whoever built the message broke
the contract. :func:`~github_p2p.p2p.messages.message_from_meta` turns that into a
``FrameRejected`` when the builder was a remote peer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, NoReturn, TypeAlias

from github_p2p.errors import LocalProtocolError

__all__ = [
    "ENTRY_ID_SIZE",
    "MAX_RID",
    "MAX_TEXT",
    "MAX_TOKEN",
    "Scalar",
    "blob",
    "check_choice",
    "check_entry_id",
    "check_flag",
    "check_rid",
    "check_text",
    "check_token",
    "fail",
    "number",
    "record",
    "set_field",
]

#: Size of an entry id (an HMAC-SHA256); it travels as 64 lowercase hex characters.
ENTRY_ID_SIZE: Final = 32
#: Request ids are unsigned 32-bit integers chosen by the requester.
MAX_RID: Final = 2**32 - 1
#: Bound on every short string (names, versions, tokens, stats keys and values).
MAX_TEXT: Final = 256
#: Bound on a credential a peer presents (a GitHub Actions OIDC JWT is 1-2 KB).
MAX_TOKEN: Final = 8192
# A compact JWS: three base64url parts, the last one possibly empty (never accepted anyway).
_JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Integers in stats and peer records must fit a signed 64-bit slot in any implementation.
_MAX_SCALAR_INT: Final = 2**63 - 1

#: A value of a stats or peer record.
Scalar: TypeAlias = int | float | str


def fail(message: str) -> NoReturn:
    """Refuse a message under construction."""
    raise LocalProtocolError(message)


def set_field(obj: object, name: str, value: object) -> None:
    """Normalise a field of a frozen dataclass from its ``__post_init__``."""
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass in __post_init__


def check_rid(rid: object) -> None:
    """A request id: an unsigned 32-bit integer (not a bool)."""
    if not isinstance(rid, int) or isinstance(rid, bool) or not 0 <= rid <= MAX_RID:
        fail("rid must be an integer in 0..2**32-1")


def check_entry_id(value: object) -> None:
    """An entry id: exactly :data:`ENTRY_ID_SIZE` bytes."""
    if not isinstance(value, bytes) or len(value) != ENTRY_ID_SIZE:
        fail(f"entry_id must be {ENTRY_ID_SIZE} bytes")


def check_text(value: object, name: str, *, limit: int = MAX_TEXT, empty: bool = False) -> None:
    """Printable text of bounded length (empty only when allowed)."""
    if not isinstance(value, str):
        fail(f"{name} must be a string")
    if not (0 if empty else 1) <= len(value) <= limit:
        fail(f"{name} must be {0 if empty else 1}..{limit} characters")
    # Printable only: these strings end up in logs and on the dashboard. This also rules out
    # lone surrogates, which could not be encoded as UTF-8.
    if not value.isprintable():
        fail(f"{name} must be printable text")


def check_token(value: object, name: str) -> None:
    """A compact JWT of at most :data:`MAX_TOKEN` characters (the value is never echoed)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TOKEN:
        fail(f"{name} must be 1..{MAX_TOKEN} characters")
    if not _JWT.fullmatch(value):
        fail(f"{name} must be a compact JWT (three base64url parts)")


def check_choice(value: object, name: str, choices: frozenset[str]) -> None:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in choices:
        fail(f"{name} must be one of {', '.join(sorted(choices))}")


def check_flag(value: object, name: str) -> None:
    """A real boolean (JSON ``true``/``false``)."""
    if not isinstance(value, bool):
        fail(f"{name} must be a boolean")


def number(value: object, name: str, low: float = 0.0, high: float = math.inf) -> float:
    """A finite int or float (not a bool) in ``[low, high]``, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:
        fail(f"{name} is out of range")
    if not math.isfinite(number) or not low <= number <= high:
        fail(f"{name} must be a finite number in [{low:g}, {high:g}]")
    return number


def blob(value: object, name: str, *, empty: bool) -> bytes:
    """Raw bytes (empty only when allowed)."""
    if not isinstance(value, bytes | bytearray | memoryview):
        fail(f"{name} must be bytes")
    data = bytes(value)
    if not data and not empty:
        fail(f"{name} must not be empty")
    return data


def record(value: object, name: str) -> Mapping[str, Scalar]:
    """A flat object of short keys and scalar values, made read-only."""
    if not isinstance(value, Mapping):
        fail(f"{name} must be an object")
    for key, item in value.items():
        check_text(key, f"a key of {name}")
        if isinstance(item, str):
            check_text(item, f"{name}[{key}]", empty=True)
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -_MAX_SCALAR_INT - 1 <= item <= _MAX_SCALAR_INT:
                fail(f"{name}[{key}] does not fit 64 bits")
        elif isinstance(item, float):
            number(item, f"{name}[{key}]", -math.inf)
        else:
            fail(f"{name}[{key}] must be a string or a number")
    return MappingProxyType(dict(value))
