"""What the simulator remembers about every API request it served."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RequestRecord", "count_records"]


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the simulator served it (control-plane calls are never recorded).

    ``path`` has no query string (``query`` holds it, undecoded); ``token`` is the bearer token or
    ``""``; ``counted`` says whether the request consumed primary rate-limit budget;
    ``conditional`` whether it carried ``If-None-Match`` or ``If-Modified-Since``; ``timestamp``
    is the simulator clock (epoch seconds) when the request was handled. ``resource`` is the
    budget it belongs to (``core`` for REST, ``graphql`` for ``POST /graphql``) and ``cost`` the
    points it spent (0 when not counted).
    """

    method: str
    path: str
    query: str
    token: str
    status: int
    counted: bool
    timestamp: float
    conditional: bool
    resource: str = "core"
    cost: int = 0

    def to_json(self) -> dict[str, Any]:
        """This record as a JSON-ready mapping."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        """Rebuild a record from :meth:`to_json` output (for example from the control plane)."""
        return cls(
            method=str(data["method"]),
            path=str(data["path"]),
            query=str(data["query"]),
            token=str(data["token"]),
            status=int(data["status"]),
            counted=bool(data["counted"]),
            timestamp=float(data["timestamp"]),
            conditional=bool(data["conditional"]),
            resource=str(data.get("resource", "core")),
            cost=int(data.get("cost", 0)),
        )


def count_records(
    records: Iterable[RequestRecord],
    path: str | None = None,
    method: str | None = "GET",
    counted_only: bool = False,
) -> int:
    """How many records match ``path`` (exact, ``None`` = any) and ``method`` (``None`` = any)."""
    wanted_method = method.upper() if method is not None else None
    return sum(
        1
        for record in records
        if (path is None or record.path == path)
        and (wanted_method is None or record.method == wanted_method)
        and (record.counted or not counted_only)
    )
