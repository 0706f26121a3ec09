"""``Link`` header parsing (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["link_targets", "next_page", "next_page_url", "page_items", "parse_link_header"]

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


def link_targets(value: str) -> list[str]:
    """Every URL a ``Link`` header names, whatever its ``rel``."""
    return [match.group(1) for match in _LINK.finditer(value)]


def next_page_url(value: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    return parse_link_header(value).get("next")


def next_page(base_url: str, headers: Mapping[str, str]
              ) -> tuple[str, list[tuple[str, str]]] | None:
    """The path (relative to ``base_url``) and query of the next page a response names.

    ``None`` when its ``Link`` header has no ``rel="next"``. A GHES base such as
    ``https://host/api/v3`` is stripped from the path, so the result can be requested again
    through the same client.
    """
    link = next((v for k, v in headers.items() if k.lower() == "link"), None)
    url = next_page_url(link)
    if url is None:
        return None
    parts = urlsplit(url)
    base_path = urlsplit(base_url).path.rstrip("/")
    path = parts.path
    if base_path and path.startswith(base_path + "/"):
        path = path[len(base_path):]
    return path, parse_qsl(parts.query, keep_blank_values=True)


def page_items(page: Any) -> list[Any]:
    """The items of one page of a list endpoint, to concatenate across pages.

    Endpoints such as ``/actions/runs`` wrap their list (``{"total_count": n,
    "workflow_runs": [...]}``): a dict with exactly one list value yields that list.
    """
    if isinstance(page, list):
        return page
    if isinstance(page, dict):
        lists = [v for v in page.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return [page]
