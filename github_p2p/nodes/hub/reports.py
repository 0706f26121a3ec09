"""Fleet totals from the runners' own counters (pure: no clock, no I/O).

Runners make every call to GitHub, so only they know what the fleet spent and saved. Each one
sends its latest snapshot now and then (a ``Report``); the hub keeps the latest per peer id and
totals them. Snapshots are cumulative for the life of a runner daemon, and a daemon's peer id
lives exactly as long, so replacing (never adding) a peer's report counts each runner once even
when it reconnects or repeats itself. Runners that left still count: the fleet's totals only grow.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["FLEET_COUNTERS", "FleetReports", "RunnerReport"]

#: Runner counters the hub totals; each becomes ``fleet_<name>`` in the hub's statistics
#: (``errors`` becomes ``fleet_runner_errors``: a runner's own ``fleet_errors`` means something
#: else, its failures to talk to the fleet).
FLEET_COUNTERS = (
    "requests",
    "local_hits",
    "peer_hits",
    "misses",
    "revalidations_304",
    "stale_served",
    "api_calls_made",
    "api_calls_saved",
    "coalesced_waits",
    "errors",
)


@dataclass(frozen=True)
class RunnerReport:
    """The latest counters one runner reported, and when (the hub's clock)."""

    peer_id: str
    counters: Mapping[str, int]
    received_at: float

    def to_json(self) -> dict[str, int | float]:
        """Counters plus the runner's hit rate and ``reported_at``."""
        out: dict[str, int | float] = dict(self.counters)
        requests = self.counters.get("requests", 0)
        hits = self.counters.get("local_hits", 0) + self.counters.get("peer_hits", 0)
        out["hit_rate"] = round(hits / requests, 4) if requests else 0.0
        out["reported_at"] = self.received_at
        return out


def _counters(stats: Mapping[str, object]) -> dict[str, int]:
    # Only the counters we total, and only sane values: a report is a peer's word, not ours.
    out: dict[str, int] = {}
    for name in FLEET_COUNTERS:
        value = stats.get(name)
        out[name] = value if isinstance(value, int) and not isinstance(value, bool) \
            and value >= 0 else 0
    return out


def _fleet_key(name: str) -> str:
    return "fleet_runner_errors" if name == "errors" else f"fleet_{name}"


class FleetReports:
    """The latest report of each runner, and the fleet's totals.

    At most ``max_peers`` runners are remembered one by one; the oldest are folded into a
    running sum beyond that, so memory stays bounded over months of ephemeral runners.
    """

    def __init__(self, max_peers: int = 4096) -> None:
        if max_peers < 1:
            raise ValueError("max_peers must be at least 1")
        self.max_peers = max_peers
        self._latest: OrderedDict[str, RunnerReport] = OrderedDict()
        self._retired = dict.fromkeys(FLEET_COUNTERS, 0)
        self._retired_peers = 0

    def update(self, peer_id: str, stats: Mapping[str, object], now: float) -> RunnerReport:
        """Record ``peer_id``'s latest snapshot, received at ``now``."""
        report = RunnerReport(peer_id, MappingProxyType(_counters(stats)), now)
        self._latest[peer_id] = report
        self._latest.move_to_end(peer_id)
        while len(self._latest) > self.max_peers:
            _, old = self._latest.popitem(last=False)
            for name in FLEET_COUNTERS:
                self._retired[name] += old.counters[name]
            self._retired_peers += 1
        return report

    def latest(self, peer_id: str) -> RunnerReport | None:
        """The last report of ``peer_id``, if it sent one."""
        return self._latest.get(peer_id)

    def totals(self) -> dict[str, int | float]:
        """A ``fleet_*`` total per counter, ``fleet_hit_rate``, ``fleet_reporting_peers``."""
        sums = dict(self._retired)
        for report in self._latest.values():
            for name in FLEET_COUNTERS:
                sums[name] += report.counters[name]
        out: dict[str, int | float] = {_fleet_key(name): value for name, value in sums.items()}
        hits = sums["local_hits"] + sums["peer_hits"]
        out["fleet_hit_rate"] = round(hits / sums["requests"], 4) if sums["requests"] else 0.0
        out["fleet_reporting_peers"] = len(self._latest) + self._retired_peers
        return out
