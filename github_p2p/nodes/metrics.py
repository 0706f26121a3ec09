"""What a node's counters look like from outside: Prometheus metrics and the MCP dashboard's
JSON view. Both read the node's statistics at request time, so they always equal
``/_p2p/stats``.

Every sample is a figure the node itself reports: a counter a node does not keep (a hub makes
no GitHub calls of its own, so it reports no ``api_calls_made``) is left out rather than shown
as a zero that would read as a measurement. Names follow Prometheus conventions: base units in
the name (``_bytes``, ``_seconds``), ``_total`` on counters, ``github_p2p_build_info`` for the
version, and the standard ``process_*`` collector for CPU, memory and file descriptors.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from github_p2p import __version__

__all__ = ["StatsSource", "mcp_stats", "metrics_registry", "render_metrics"]


class StatsSource(Protocol):
    """Anything with the node's statistics."""

    def stats(self) -> dict[str, Any]:
        """Counters as named in DESIGN."""


def metrics_registry(node: StatsSource) -> CollectorRegistry:
    """A registry with one collector that reads ``node``'s counters at scrape time, and the
    process collector (``process_cpu_seconds_total``, ``process_resident_memory_bytes``...)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatsCollector(node))
    ProcessCollector(registry=registry)
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry)


def _number(stats: Mapping[str, Any], key: str) -> float | None:
    value = stats.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


_OUTCOMES = (("hit-local", "local_hits"), ("hit-peer", "peer_hits"), ("miss", "misses"),
             ("revalidated", "revalidations_304"), ("stale", "stale_served"),
             ("bypass", "bypassed"))
_ERROR_KINDS = ("errors", "integrity_failures", "fleet_errors", "protocol_errors",
                "stream_errors")


class _StatsCollector(Collector):
    """Reads the node's counters at scrape time, so /metrics always equals /_p2p/stats."""

    def __init__(self, node: StatsSource) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        stats = self._node.stats()
        info = InfoMetricFamily("github_p2p_build", "Version of this node",
                                labels=["version", "python", "role"])
        info.add_metric([__version__, platform.python_version(), str(stats.get("role", ""))],
                        {})
        yield info
        yield from _counters(stats, "github_p2p", "")
        errors = CounterMetricFamily("github_p2p_errors", "Errors by kind", labels=["kind"])
        for kind in _ERROR_KINDS:
            value = _number(stats, kind)
            if value is not None:
                errors.add_metric([kind], value)
        if errors.samples:
            yield errors
        if "fleet_requests" in stats:  # a hub: what its runners reported, and its own work
            yield from _counters(stats, "github_p2p_fleet", "fleet_")
            yield from _hub_metrics(stats)
        for name, key, text, unit in (
            ("github_p2p_store_size", "bytes_stored", "Bytes in the cache store", "bytes"),
            ("github_p2p_store_entries", "total_entries", "Entries in the cache store", ""),
            ("github_p2p_connected_peers", "connected_peers", "Connected peers", ""),
            ("github_p2p_rate_limit_remaining", "rate_limit_remaining",
             "Last x-ratelimit-remaining seen from GitHub", ""),
            ("github_p2p_graphql_rate_limit_remaining", "graphql_rate_limit_remaining",
             "Last x-ratelimit-remaining of a GraphQL call", ""),
        ):
            value = _number(stats, key)
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value, unit=unit)
        for key, text in (("registry_api_calls", "GitHub calls of the peer registry"),
                          ("registry_heartbeats", "Peer registry heartbeats")):
            value = _number(stats, key)
            if value is not None:
                yield CounterMetricFamily(f"github_p2p_{key}", text, value=value)


def _counters(stats: Mapping[str, Any], prefix: str, key: str) -> Iterator[Metric]:
    """Requests by outcome, upstream calls, calls saved, coalesced waits (keys ``key+name``),
    each only when the node reports it."""
    requests = CounterMetricFamily(f"{prefix}_requests", "Requests by cache outcome",
                                   labels=["outcome"])
    for outcome, name in _OUTCOMES:
        value = _number(stats, key + name)
        if value is not None:
            requests.add_metric([outcome], value)
    if requests.samples:
        yield requests
    for metric, name, text in (
        ("upstream_calls", "api_calls_made", "Requests sent to GitHub (retries included)"),
        ("api_calls_saved", "api_calls_saved", "Requests answered with no call to GitHub"),
        ("coalesced_waits", "coalesced_waits", "Waits for another runner's fill"),
        ("graphql_calls", "graphql_calls", "Requests sent to GitHub's GraphQL API"),
    ):
        value = _number(stats, key + name)
        if value is not None:
            yield CounterMetricFamily(f"{prefix}_{metric}", text, value=value)


def _hub_metrics(stats: Mapping[str, Any]) -> Iterator[Metric]:
    yield GaugeMetricFamily("github_p2p_fleet_reporting_peers", "Runners that sent counters",
                            value=float(stats.get("fleet_reporting_peers") or 0))
    yield CounterMetricFamily("github_p2p_hub_messages", "Protocol requests handled",
                              value=float(stats.get("requests") or 0))
    traffic = CounterMetricFamily("github_p2p_hub_transfer", "Sealed entry bytes moved",
                                  labels=["direction"], unit="bytes")
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
    (its own counters stay in ``/_p2p/stats``); entries and size are its store's. ``hit_rate``
    is a fraction (0..1), as everywhere.
    """
    out = dict(stats)
    if "fleet_requests" in stats:
        out.update({name: stats.get(f"fleet_{name}", 0) for name in _FLEET_VIEW})
    for name in ("total_entries", *_FLEET_VIEW):
        out.setdefault(name, 0)
    out["total_size_mb"] = round(float(stats.get("bytes_stored") or 0) / (1024 * 1024), 3)
    return out
