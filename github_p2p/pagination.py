"""``Link`` header parsing (pure)."""

from __future__ import annotations

import re

__all__ = ["next_page_url", "parse_link_header"]

_LINK = re.compile(r'<([^>]*)>\s*((?:;\s*[^;,]+)*)')
_REL = re.compile(r'rel\s*=\s*"?([^";,]+)"?')


def parse_link_header(value: str | None) -> dict[str, str]:
    """Map each ``rel`` of an RFC 8288 ``Link`` header to its URL.

    >>> parse_link_header('<https://x/?page=2>; rel="next", <https://x/?page=5>; rel="last"')
    {'next': 'https://x/?page=2', 'last': 'https://x/?page=5'}
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK.finditer(value):
        url, params = match.group(1), match.group(2)
        rel = _REL.search(params)
        if rel:
            for name in rel.group(1).split():
                links.setdefault(name, url)
    return links


def next_page_url(value: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    return parse_link_header(value).get("next")
