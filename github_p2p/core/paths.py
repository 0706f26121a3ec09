"""Which API paths a node forwards with its token (pure).

A path is appended to the API base URL. ``..`` would be resolved by the HTTP client and climb
out of the base URL's path (GHES serves the API under ``/api/v3``), taking the token elsewhere on
the host; an encoded dot, slash or backslash may be decoded again upstream; control characters
could split a request. Such paths are refused wherever a path enters: the endpoint's proxy and
the MCP tools.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

__all__ = ["RAW_PREFIX", "api_path", "is_refused", "raw_url"]

#: Raw file contents, as GitHub's own MCP server asks a GHES-style host for them.
RAW_PREFIX = "/raw/"

_ENCODED_SEPARATORS = ("%2e", "%2f", "%5c")


def is_refused(path: str) -> bool:
    """True when ``path`` must not be forwarded (see the module's reasons)."""
    if not path.startswith("/") or "\\" in path:
        return True
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return True
    if any(segment in (".", "..") for segment in path.split("/")):
        return True
    lowered = path.lower()
    return any(escape in lowered for escape in _ENCODED_SEPARATORS)


def api_path(path: str, *, decoded: bool = True) -> str | None:
    """``path`` re-encoded for the upstream URL, or ``None`` when it is refused.

    A ``decoded`` path (as an HTTP server hands it over) has every ``%`` re-encoded, so a
    decoded ``?``, ``#`` or ``%`` stays part of the path instead of cutting it short; a path
    as a user typed it keeps its own escapes.
    """
    if is_refused(path):
        return None
    return quote(path, safe="/:@!$&'()*+,;=~" + ("" if decoded else "%"))


def raw_url(api_url: str, path: str) -> str:
    """Where ``/raw/OWNER/REPO/REF/PATH`` lives for an API base: ``raw.githubusercontent.com``
    beside ``api.github.com``, the host's own ``/raw/`` for GitHub Enterprise Server (whose API
    is under ``/api/v3``) and for any other base."""
    parts = urlsplit(api_url.rstrip("/"))
    rest = path[len(RAW_PREFIX):]
    if parts.netloc.lower() == "api.github.com":
        return "https://raw.githubusercontent.com/" + rest
    return f"{parts.scheme}://{parts.netloc}{RAW_PREFIX}{rest}"
