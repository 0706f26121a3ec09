"""Cache entries and their byte encoding (pure).

An entry is one GitHub response worth keeping: status, the headers that matter to a client,
the body, when it was fetched, until when it is fresh, the validators, and a multihash digest of
the body that is checked whenever the entry is decoded. The encoding is a 4-byte big-endian
length, a JSON header and the raw body; it is what the local store keeps and what gets sealed
for the fleet.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from typing import Any

import multihash

from github_p2p.errors import DigestMismatchError, EnvelopeFormatError

__all__ = [
    "KEPT_HEADERS",
    "CacheEntry",
    "body_digest",
    "decode_entry",
    "encode_entry",
]

#: Response headers worth replaying from a cache. Rate-limit headers are per token and per
#: moment, and ETag is token-specific, so they are deliberately not replayed.
KEPT_HEADERS = frozenset(
    {
        "content-type",
        "link",
        "last-modified",
        "x-github-api-version-selected",
        "x-github-media-type",
    }
)
_HEADER = struct.Struct(">I")
_MAX_META = 64 * 1024


def body_digest(body: bytes) -> bytes:
    """The sha2-256 multihash of ``body``, as bytes."""
    digest: bytes = multihash.digest(body, multihash.Func.sha2_256).encode()
    return digest


@dataclass(frozen=True)
class CacheEntry:
    """One cached GitHub response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    fetched_at: float
    expires_at: float
    etag: str | None = None
    #: Fingerprint of the token the ETag belongs to: ETags are token-specific, so only that
    #: token may send it back in ``If-None-Match``.
    etag_owner: str | None = None
    last_modified: str | None = None
    digest: bytes = b""
    #: Fingerprint of the only token this entry may be served to (negative answers), or
    #: ``None`` when it is the same for every caller of the scope.
    owner: str | None = None

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", body_digest(self.body))

    def is_fresh(self, now: float) -> bool:
        """True while the entry may be served without asking GitHub."""
        return now < self.expires_at

    def serves(self, caller: str | None) -> bool:
        """True when the entry may be served to the token with fingerprint ``caller``."""
        return self.owner is None or self.owner == caller

    @property
    def size(self) -> int:
        """Bytes of :func:`encode_entry`'s output, without building it."""
        return _HEADER.size + len(_meta_bytes(self)) + len(self.body)

    def header(self, name: str) -> str | None:
        """The value of a kept header, case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers:
            if key == lowered:
                return value
        return None

    def refreshed(self, now: float, ttl: float) -> CacheEntry:
        """The same response, confirmed unchanged at ``now`` (after a 304)."""
        return replace(self, fetched_at=now, expires_at=now + ttl)

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None


def _meta_bytes(entry: CacheEntry) -> bytes:
    meta = {
        "s": entry.status,
        "h": [list(pair) for pair in entry.headers],
        "f": entry.fetched_at,
        "x": entry.expires_at,
        "e": entry.etag,
        "o": entry.etag_owner,
        "m": entry.last_modified,
        "d": entry.digest.hex(),
    }
    if entry.owner is not None:
        meta["w"] = entry.owner
    return json.dumps(meta, separators=(",", ":")).encode()


def encode_entry(entry: CacheEntry) -> bytes:
    """Serialise ``entry`` to bytes."""
    raw = _meta_bytes(entry)
    return _HEADER.pack(len(raw)) + raw + entry.body


def _opt_str(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise EnvelopeFormatError(f"entry field {key!r} has the wrong type")
    return value


def decode_entry(data: bytes) -> CacheEntry:
    """Parse bytes made by :func:`encode_entry` and verify the body digest.

    Raises :class:`EnvelopeFormatError` for malformed data and :class:`DigestMismatchError` when
    the body does not match its recorded digest.
    """
    if len(data) < _HEADER.size:
        raise EnvelopeFormatError("entry is truncated")
    (meta_len,) = _HEADER.unpack_from(data)
    if meta_len > _MAX_META or _HEADER.size + meta_len > len(data):
        raise EnvelopeFormatError("entry header length is out of bounds")
    try:
        meta = json.loads(data[_HEADER.size : _HEADER.size + meta_len])
        status = meta["s"]
        headers = tuple((str(k), str(v)) for k, v in meta["h"])
        fetched_at = float(meta["f"])
        expires_at = float(meta["x"])
        digest = bytes.fromhex(meta["d"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EnvelopeFormatError("entry header is malformed") from exc
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise EnvelopeFormatError("entry status is invalid")
    body = data[_HEADER.size + meta_len :]
    if not digest or body_digest(body) != digest:
        raise DigestMismatchError("entry body does not match its digest")
    return CacheEntry(
        status=status,
        headers=headers,
        body=body,
        fetched_at=fetched_at,
        expires_at=expires_at,
        etag=_opt_str(meta, "e"),
        etag_owner=_opt_str(meta, "o"),
        last_modified=_opt_str(meta, "m"),
        digest=digest,
        owner=_opt_str(meta, "w"),
    )
