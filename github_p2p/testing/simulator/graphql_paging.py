"""Cursor pagination of GraphQL connections, and the point cost of a query, as GitHub does them.

* A connection takes ``first``/``after`` or ``last``/``before`` (1 to 100); asking for
  ``nodes`` or ``edges`` without ``first`` or ``last`` is an error, while ``totalCount`` alone
  is fine (``gh`` relies on it). Cursors are opaque strings.
* The cost: every connection needs one request per object of its parent connections; the sum
  divided by 100, rounded, at least 1 (GitHub's documented formula, which it calls subject to
  change).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from graphql import GraphQLError
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast, value_from_ast_untyped

__all__ = ["MAX_PAGE", "connection", "query_cost"]

T = TypeVar("T")
#: graphql-core's resolve info (generic in 3.3, not in 3.2).
Info = Any
MAX_PAGE = 100
_CURSOR_PREFIX = "cursor:v2:"


def _cursor(index: int) -> str:
    return base64.b64encode(f"{_CURSOR_PREFIX}{index}".encode()).decode()


def _index(cursor: str, info: Info) -> int:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        if text.startswith(_CURSOR_PREFIX):
            return int(text[len(_CURSOR_PREFIX):])
    except ValueError:
        pass
    raise GraphQLError(f"`{cursor}` does not appear to be a valid cursor.", info.field_nodes,
                       extensions={"type": "INVALID_CURSOR_ARGUMENTS"})


def _selects_items(info: Info) -> bool:
    for node in info.field_nodes:
        for selection in node.selection_set.selections if node.selection_set else ():
            if isinstance(selection, FieldNode) and selection.name.value in ("nodes", "edges"):
                return True
            if not isinstance(selection, FieldNode):
                return True  # a fragment may select them: be as strict as GitHub
    return False


def _size(name: str, value: int | None, info: Info) -> int | None:
    if value is None:
        return None
    if value < 0 or value > MAX_PAGE:
        raise GraphQLError(
            f"Requesting {value} records on the `{info.field_name}` connection exceeds the "
            f"`{name}` limit of {MAX_PAGE} records.", info.field_nodes)
    return value


def connection(
    info: Info,
    items: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    """The ``{totalCount, nodes, edges, pageInfo}`` object of a connection over ``items``.

    ``render`` turns an item into its GraphQL object; only the page's items are rendered.
    """
    first_n = _size("first", first, info)
    last_n = _size("last", last, info)
    if first_n is None and last_n is None and _selects_items(info):
        raise GraphQLError(
            f"You must provide a `first` or `last` value to properly paginate the "
            f"`{info.field_name}` connection.", info.field_nodes)
    start = _index(after, info) + 1 if after else 0
    end = _index(before, info) if before else len(items)
    start, end = max(0, min(start, len(items))), max(0, min(end, len(items)))
    end = max(start, end)
    if first_n is not None:
        end = min(end, start + first_n)
    if last_n is not None:
        start = max(start, end - last_n)
    window = range(start, end)

    def edges(_info: Info, **_: Any) -> list[dict[str, Any]]:
        return [{"cursor": _cursor(i), "node": render(items[i])} for i in window]

    return {
        "totalCount": len(items),
        "nodes": lambda _info, **_: [render(items[i]) for i in window],
        "edges": edges,
        "pageInfo": {
            "hasNextPage": end < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if window else None,
            "endCursor": _cursor(end - 1) if window else None,
        },
    }


def _page_size(node: FieldNode, variables: Mapping[str, Any]) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value in ("first", "last"):
            value = value_from_ast_untyped(argument.value, dict(variables))
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def query_cost(document: DocumentNode, operation_name: str | None,
               variables: Mapping[str, Any]) -> tuple[int, int]:
    """``(points, nodes)`` of a validated document's operation (``(1, 0)`` if there is none)."""
    operation: OperationDefinitionNode | None = get_operation_ast(document, operation_name)
    if operation is None:
        return 1, 0
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    totals = [0, 0]

    def walk(selection_set: SelectionSetNode | None, parents: int, depth: int) -> None:
        if selection_set is None or depth > 64:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                size = _page_size(selection, variables)
                if size is None:
                    walk(selection.selection_set, parents, depth + 1)
                else:
                    totals[0] += parents
                    totals[1] += parents * size
                    walk(selection.selection_set, parents * size, depth + 1)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, parents, depth + 1)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.get(selection.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, parents, depth + 1)

    walk(operation.selection_set, 1, 0)
    return max(1, math.floor(totals[0] / 100 + 0.5)), totals[1]
