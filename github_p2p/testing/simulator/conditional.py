"""Validators and conditional requests, the way GitHub does them for a cache's purposes."""

from __future__ import annotations

import hashlib
from email.utils import formatdate, parsedate_to_datetime

__all__ = ["http_date", "is_not_modified", "parse_http_date", "token_etag"]


def token_etag(token: str, body: bytes) -> str:
    """``W/"<first 32 hex of sha256(token || body)>"``.

    GitHub's ETags are token-specific (one job cannot revalidate with another job's ETag), so the
    token goes into the hash in front of the body.
    """
    digest = hashlib.sha256(token.encode() + body).hexdigest()
    return f'W/"{digest[:32]}"'


def http_date(epoch_seconds: int) -> str:
    """An RFC 1123 date (``Mon, 01 Jan 2024 00:00:00 GMT``)."""
    return formatdate(epoch_seconds, usegmt=True)


def parse_http_date(value: str) -> int | None:
    """Epoch seconds of an HTTP date, or ``None`` when it does not parse."""
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def is_not_modified(
    if_none_match: str | None,
    if_modified_since: str | None,
    etag: str,
    last_modified: int | None,
) -> bool:
    """Whether a GET may be answered ``304 Not Modified``.

    As RFC 9110 says, ``If-None-Match`` (weak comparison) decides alone when present;
    ``If-Modified-Since`` only counts for resources that carry a ``Last-Modified``.
    """
    if if_none_match is not None:
        candidates = [part for part in if_none_match.split(",") if part.strip()]
        wanted = _opaque(etag)
        return any(c.strip() == "*" or _opaque(c) == wanted for c in candidates)
    if if_modified_since is not None and last_modified is not None:
        since = parse_http_date(if_modified_since)
        return since is not None and last_modified <= since
    return False
