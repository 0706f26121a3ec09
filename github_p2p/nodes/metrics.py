"""What a node's counters look like from outside: Prometheus metrics and the MCP dashboard's
JSON view. Both read the node's statistics at request time, so they always equal
``/_p2p/stats``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["StatsSource", "mcp_stats", "metrics_registry", "render_metrics"]


class StatsSource(Protocol):
    """Anything with the node's statistics."""

    def stats(self) -> dict[str, Any]:
        """Counters as named in DESIGN."""


def metrics_registry(node: StatsSource) -> CollectorRegistry:
    """A registry whose one collector reads ``node``'s counters at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(node))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


class _StatsCollector(Collector):
    """Reads the node's counters at scrape time, so /metrics always equals /_p2p/stats."""

    def __init__(self, node: StatsSource) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        stats = self._node.stats()
        yield from _counters(stats, "github_p2p", "")
        errors = CounterMetricFamily("github_p2p_errors", "Errors by kind", labels=["kind"])
        for kind in ("errors", "integrity_failures", "fleet_errors", "protocol_errors",
                     "stream_errors"):
            errors.add_metric([kind], float(stats.get(kind) or 0))
        yield errors
        if "fleet_requests" in stats:  # a hub: what its runners reported, and its own work
            yield from _counters(stats, "github_p2p_fleet", "fleet_")
            yield from _hub_metrics(stats)
        yield GaugeMetricFamily("github_p2p_bytes_stored", "Bytes in the cache store",
                                value=float(stats.get("bytes_stored") or 0))
        yield GaugeMetricFamily("github_p2p_entries", "Entries in the cache store",
                                value=float(stats.get("total_entries") or 0))
        yield GaugeMetricFamily("github_p2p_connected_peers", "Connected peers",
                                value=float(stats.get("connected_peers") or 0))
        remaining = stats.get("rate_limit_remaining")
        if isinstance(remaining, int):
            yield GaugeMetricFamily("github_p2p_rate_limit_remaining",
                                    "Last x-ratelimit-remaining seen", value=float(remaining))
        graphql_remaining = stats.get("graphql_rate_limit_remaining")
        if isinstance(graphql_remaining, int):
            yield GaugeMetricFamily("github_p2p_graphql_rate_limit_remaining",
                                    "Last x-ratelimit-remaining of a GraphQL call",
                                    value=float(graphql_remaining))


_OUTCOMES = (("hit-local", "local_hits"), ("hit-peer", "peer_hits"), ("miss", "misses"),
             ("revalidated", "revalidations_304"), ("stale", "stale_served"),
             ("bypass", "bypassed"))


def _counters(stats: Mapping[str, Any], prefix: str, key: str) -> Iterator[Metric]:
    """Requests by outcome, upstream calls, calls saved, coalesced waits (keys ``key+name``)."""
    requests = CounterMetricFamily(f"{prefix}_requests", "Requests by cache outcome",
                                   labels=["outcome"])
    for outcome, name in _OUTCOMES:
        requests.add_metric([outcome], float(stats.get(key + name) or 0))
    yield requests
    for metric, name, text in (
        ("upstream_calls", "api_calls_made", "Requests sent to GitHub"),
        ("api_calls_saved", "api_calls_saved", "Requests answered with no call"),
        ("coalesced_waits", "coalesced_waits", "Waits for another runner's fill"),
        ("graphql_calls", "graphql_calls", "Requests sent to GitHub's GraphQL API"),
    ):
        yield CounterMetricFamily(f"{prefix}_{metric}", text,
                                  value=float(stats.get(key + name) or 0))


def _hub_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily("github_p2p_fleet_reporting_peers", "Runners that sent counters",
                            value=float(stats.get("fleet_reporting_peers") or 0))
    yield CounterMetricFamily("github_p2p_hub_messages", "Protocol requests handled",
                              value=float(stats.get("requests") or 0))
    traffic = CounterMetricFamily("github_p2p_hub_bytes", "Sealed entry bytes moved",
                                  labels=["direction"])
    for direction in ("in", "out"):
        traffic.add_metric([direction], float(stats.get(f"bytes_{direction}") or 0))
    yield traffic
    leases = CounterMetricFamily("github_p2p_leases", "Fill lease events", labels=["event"])
    for event, name in (("granted", "leases_granted"), ("timeout", "lease_timeouts"),
                        ("takeover", "lease_takeovers")):
        leases.add_metric([event], float(stats.get(name) or 0))
    yield leases
    yield GaugeMetricFamily("github_p2p_fills_in_flight", "Fill leases held right now",
                            value=float(stats.get("fills_in_flight") or 0))
    yield GaugeMetricFamily("github_p2p_lease_waiters", "Runners waiting for a fill",
                            value=float(stats.get("waiters") or 0))


#: Fields of ``/api/mcp/cache/stats`` that a hub takes from its runners' reported totals.
_FLEET_VIEW = ("requests", "local_hits", "peer_hits", "misses", "api_calls_made",
               "api_calls_saved", "coalesced_waits", "hit_rate")


def mcp_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The MCP dashboard's cache view: the node's own counters, or the fleet's on a hub.

    A hub makes no GitHub calls itself, so its cache figures are what the runners reported
    (its own counters stay in ``/_p2p/stats``); entries and size are its store's.
    """
    out = dict(stats)
    if "fleet_requests" in stats:
        out.update({name: stats.get(f"fleet_{name}", 0) for name in _FLEET_VIEW})
    for name in ("total_entries", *_FLEET_VIEW):
        out.setdefault(name, 0)
    out["total_size_mb"] = round(float(stats.get("bytes_stored") or 0) / (1024 * 1024), 3)
    return out


