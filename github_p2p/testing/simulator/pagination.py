"""``per_page``/``page`` slicing and GitHub's ``Link`` header."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar
from urllib.parse import urlencode

__all__ = ["paginate"]

T = TypeVar("T")


def _positive_int(value: str | None, default: int) -> int:
    # GitHub ignores values it cannot use rather than failing the request.
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        return default
    return number if number >= 1 else default


def paginate(
    items: Sequence[T],
    params: Sequence[tuple[str, str]],
    page_url: str,
    *,
    per_page_default: int,
    per_page_max: int,
) -> tuple[list[T], str | None]:
    """The slice of ``items`` that ``page``/``per_page`` ask for, and its ``Link`` header value.

    ``page_url`` is the absolute URL of the list without a query; link targets keep every other
    query parameter in its place and only replace (or append) ``page``. A list that fits on one
    page has no ``Link`` header, like on GitHub.
    """
    query = dict(params)
    per_page = min(_positive_int(query.get("per_page"), per_page_default), per_page_max)
    page = _positive_int(query.get("page"), 1)
    last = max(1, -(-len(items) // per_page))
    chunk = list(items[(page - 1) * per_page : page * per_page])
    if last == 1 and page == 1:
        return chunk, None

    def link(number: int, rel: str) -> str:
        pairs = [(k, str(number) if k == "page" else v) for k, v in params]
        if "page" not in query:
            pairs.append(("page", str(number)))
        return f'<{page_url}?{urlencode(pairs)}>; rel="{rel}"'

    links: list[str] = []
    if page > 1:
        links.append(link(min(page - 1, last), "prev"))
    if page < last:
        links.append(link(page + 1, "next"))
        links.append(link(last, "last"))
    if page > 1:
        links.append(link(1, "first"))
    return chunk, ", ".join(links)
