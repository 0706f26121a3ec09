"""Absolute API URLs, rewritten to the endpoint a client called (pure).

GitHub names resources by absolute URL: in JSON bodies (``url``, ``releases_url``, ...), in
``Link`` (pagination) and in ``Location``. A client that reached the API through a runner's
endpoint follows those URLs, and must come back through the endpoint: PyGithub, for one, refuses
a URL whose host or port differs from its base. What is stored and shared keeps the upstream
URLs; only the copy on its way out is rewritten.

Only URLs that *start* a JSON string or a ``Link`` target are rewritten: text that merely
mentions an API URL (an issue body quoting one) is the user's data and stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["KEEP_URLS_HEADER", "UrlRewriter"]

#: A request carrying this header (any value) gets GitHub's own URLs back, unrewritten: the gh
#: path of github-p2p prints exactly what gh prints.
KEEP_URLS_HEADER = "X-GitHub-P2P-Keep-URLs"

# What may follow the base in a URL that is the API's: a path, a query, a fragment, a
# template ("{/number}"), or the end of the string.
_AFTER = "(?=[/?#{\"'>]|$)"


@dataclass(frozen=True)
class UrlRewriter:
    """Rewrites ``upstream`` (the API base, e.g. ``https://api.github.com`` or a GHES
    ``https://ghe.example/api/v3``) to ``own`` (the endpoint's base as the client called it)."""

    upstream: str
    own: str
    _body: re.Pattern[bytes] = field(init=False, repr=False, compare=False)
    _header: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        upstream, own = self.upstream.rstrip("/"), self.own.rstrip("/")
        object.__setattr__(self, "upstream", upstream)
        object.__setattr__(self, "own", own)
        object.__setattr__(self, "_body", re.compile(
            b'(?<=")' + re.escape(upstream.encode()) + _AFTER.encode(), re.IGNORECASE))
        object.__setattr__(self, "_header", re.compile(
            "(?:(?<=<)|^)" + re.escape(upstream) + _AFTER, re.IGNORECASE))

    @property
    def identity(self) -> bool:
        """True when nothing would change."""
        return self.upstream == self.own

    def body(self, data: bytes, content_type: str | None) -> bytes:
        """A JSON body with its API URLs pointing at ``own``; other bodies unchanged."""
        if self.identity or not data or "json" not in (content_type or "").lower():
            return data
        return self._body.sub(self.own.encode().replace(b"\\", b"\\\\"), data)

    def header(self, value: str) -> str:
        """A ``Link`` or ``Location`` value with its API URLs pointing at ``own``."""
        if self.identity:
            return value
        return self._header.sub(self.own.replace("\\", "\\\\"), value)
