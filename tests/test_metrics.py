"""The status endpoints of both node kinds: ``/metrics``, ``/_p2p/stats|peers``, MCP aliases.

A hub and two runner daemons run in this process on loopback (real libp2p with the network key,
real HTTP through hypercorn, the GitHub simulator upstream), with a fast key derivation and a
short report interval so the whole fleet is up in a second or two.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import trio
from prometheus_client.parser import text_string_to_metric_families

from github_p2p import __version__
from github_p2p.config import ClientSettings
from github_p2p.core.keys import derive_master_key, network_key_from_master
from github_p2p.nodes.endpoint import build_app
from github_p2p.nodes.hub.service import HubService, HubSettings
from github_p2p.nodes.peer import PeerDaemon, PeerSettings
from github_p2p.nodes.runtime import serve_http
from github_p2p.p2p.link import LinkSettings
from github_p2p.testing.localfleet import free_port

SECRET = "metrics-test-fleet-secret"
ITERATIONS = 1000  # the real 600,000 would cost seconds per node for nothing here
REPO = "octo/hello"


@dataclass
class Fleet:
    hub: HubService
    hub_url: str
    runners: list[PeerDaemon]


def runner_settings(sim: Any, cache_dir: Path, bootstrap: tuple[str, ...]) -> PeerSettings:
    return PeerSettings(
        client=ClientSettings(api_url=sim.url, scope=REPO), cache_dir=cache_dir, secret=SECRET,
        bootstrap=bootstrap, listen_host="127.0.0.1", port=free_port(), http_port=free_port(),
        kdf_iterations=ITERATIONS, runner_name=cache_dir.name,
        link=LinkSettings(report_interval=0.1),
    )


@asynccontextmanager
async def in_process_fleet(sim: Any, tmp_path: Path, runners: int = 2) -> AsyncIterator[Fleet]:
    key = network_key_from_master(derive_master_key(SECRET, iterations=ITERATIONS))
    hub = HubService(HubSettings(cache_dir=tmp_path / "hub", network_key=key,
                                 listen_host="127.0.0.1", port=free_port()))
    async with trio.open_nursery() as nursery:
        running = await nursery.start(hub.run)
        hub_url = await serve_http(nursery, build_app(hub), "127.0.0.1", free_port(),
                                   hub.shutdown)
        daemons = [PeerDaemon(runner_settings(sim, tmp_path / f"runner{i}",
                                              (running.multiaddrs[0],)))
                   for i in range(runners)]
        for daemon in daemons:
            await nursery.start(daemon.run)
        try:
            yield Fleet(hub, hub_url, daemons)
        finally:
            for daemon in daemons:
                daemon.request_shutdown()
            hub.request_shutdown()
            nursery.cancel_scope.cancel()


async def get_json(url: str) -> Any:
    return await trio.to_thread.run_sync(lambda: requests.get(url, timeout=10).json())


async def get_text(url: str) -> str:
    return await trio.to_thread.run_sync(lambda: requests.get(url, timeout=10).text)


async def fetch(endpoint: str, path: str, token: str) -> requests.Response:
    return await trio.to_thread.run_sync(lambda: requests.get(
        endpoint + path, headers={"Authorization": f"Bearer {token}"}, timeout=30))


async def traffic(fleet: Fleet) -> None:
    """Misses, fleet hits, local hits and a 404 over both runners."""
    first, second = fleet.runners
    for i in range(6):
        assert (await fetch(first.endpoint or "", f"/repos/{REPO}/contents/f{i}.txt",
                            "ghs_one")).status_code == 200
    for i in range(4):
        assert (await fetch(second.endpoint or "", f"/repos/{REPO}/contents/f{i}.txt",
                            "ghs_two")).status_code == 200
    for _ in range(2):
        await fetch(second.endpoint or "", f"/repos/{REPO}/contents/f0.txt", "ghs_two")
    assert (await fetch(first.endpoint or "", f"/repos/{REPO}/issues/99999",
                        "ghs_one")).status_code == 404


async def settled_stats(fleet: Fleet) -> dict[str, Any]:
    """The hub's stats once every runner's latest counters have reached it."""
    with trio.fail_after(10):
        while True:
            runner_requests = sum(r.stats()["requests"] for r in fleet.runners)
            stats = await get_json(fleet.hub_url + "/_p2p/stats")
            if stats["fleet_requests"] == runner_requests:
                return stats  # type: ignore[no-any-return]
            await trio.sleep(0.05)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


OUTCOMES = {"hit-local": "local_hits", "hit-peer": "peer_hits", "miss": "misses",
            "revalidated": "revalidations_304", "stale": "stale_served", "bypass": "bypassed"}


def expected_common(stats: dict[str, Any], prefix: str, key: str) -> dict[Any, float]:
    """Only what the node reports: a hub keeps no GitHub-call counters of its own, so it has
    no upstream or calls-saved sample at all (a 0 there would read as a measurement)."""
    out: dict[Any, float] = {
        (f"{prefix}_requests_total", (("outcome", outcome),)): stats[key + name]
        for outcome, name in OUTCOMES.items() if key + name in stats
    }
    for metric, name in (("upstream_calls", "api_calls_made"),
                         ("api_calls_saved", "api_calls_saved"),
                         ("coalesced_waits", "coalesced_waits"),
                         ("graphql_calls", "graphql_calls")):
        if key + name in stats:
            out[(f"{prefix}_{metric}_total", ())] = stats[key + name]
    return out


def expected_node(stats: dict[str, Any]) -> dict[Any, float]:
    out = expected_common(stats, "github_p2p", "")
    for kind in ("errors", "integrity_failures", "fleet_errors", "protocol_errors",
                 "stream_errors"):
        if kind in stats:
            out[("github_p2p_errors_total", (("kind", kind),))] = stats[kind]
    out[("github_p2p_store_size_bytes", ())] = stats["bytes_stored"]
    out[("github_p2p_store_entries", ())] = stats["total_entries"]
    out[("github_p2p_connected_peers", ())] = stats["connected_peers"]
    out[("github_p2p_build_info", (("python", platform.python_version()),
                                   ("role", stats["role"]), ("version", __version__)))] = 1.0
    return out


def own(metrics: dict[Any, float]) -> dict[Any, float]:
    """The node's own samples; the process collector's are checked on their own."""
    assert metrics[("process_resident_memory_bytes", ())] > 0
    assert metrics[("process_cpu_seconds_total", ())] > 0
    return {k: v for k, v in metrics.items() if not k[0].startswith("process_")}


async def test_metrics_parse_and_equal_stats_on_both_node_kinds(sim, tmp_path) -> None:
    async with in_process_fleet(sim, tmp_path) as fleet:
        await traffic(fleet)
        hub_stats = await settled_stats(fleet)
        hub_metrics = own(samples(await get_text(fleet.hub_url + "/metrics")))
        assert hub_stats == await get_json(fleet.hub_url + "/_p2p/stats")  # nothing moved

        expected = expected_node(hub_stats)
        expected.update(expected_common(hub_stats, "github_p2p_fleet", "fleet_"))
        expected[("github_p2p_fleet_reporting_peers", ())] = 2
        expected[("github_p2p_hub_messages_total", ())] = hub_stats["requests"]
        expected[("github_p2p_hub_transfer_bytes_total", (("direction", "in"),))] = \
            hub_stats["bytes_in"]
        expected[("github_p2p_hub_transfer_bytes_total", (("direction", "out"),))] = \
            hub_stats["bytes_out"]
        for event, name in (("granted", "leases_granted"), ("timeout", "lease_timeouts"),
                            ("takeover", "lease_takeovers")):
            expected[("github_p2p_leases_total", (("event", event),))] = hub_stats[name]
        expected[("github_p2p_fills_in_flight", ())] = hub_stats["fills_in_flight"]
        expected[("github_p2p_lease_waiters", ())] = hub_stats["waiters"]
        assert hub_metrics == expected
        # The hub calls GitHub for nothing of its own: no upstream figure, true or false.
        assert ("github_p2p_upstream_calls_total", ()) not in hub_metrics

        # The fleet totals are exact: what the simulator counted, the runners' own sums.
        runner_stats = [await get_json(r.endpoint + "/_p2p/stats") for r in fleet.runners]
        assert hub_stats["fleet_api_calls_made"] == len(sim.records()) == 7
        for name in ("requests", "local_hits", "peer_hits", "misses", "api_calls_saved"):
            assert hub_stats[f"fleet_{name}"] == sum(s[name] for s in runner_stats), name
        assert (hub_stats["fleet_requests"], hub_stats["fleet_peer_hits"],
                hub_stats["fleet_local_hits"]) == (13, 4, 2)
        assert hub_stats["connected_peers"] == 2 and hub_stats["total_entries"] >= 6

        for runner, stats in zip(fleet.runners, runner_stats, strict=True):
            metrics = own(samples(await get_text(runner.endpoint + "/metrics")))
            want = expected_node(stats)
            if stats["api_calls_made"]:  # a runner that never called GitHub has no figure
                want[("github_p2p_rate_limit_remaining", ())] = stats["rate_limit_remaining"]
            assert metrics == want
            assert not any(name.startswith(("github_p2p_fleet", "github_p2p_hub"))
                           for name, _ in metrics)


async def test_json_shapes_and_mcp_aliases(sim, tmp_path) -> None:
    async with in_process_fleet(sim, tmp_path) as fleet:
        await traffic(fleet)
        stats = await settled_stats(fleet)
        first = fleet.runners[0]

        peers = await get_json(fleet.hub_url + "/_p2p/peers")
        assert sorted(p["runner_name"] for p in peers["peers"]) == ["runner0", "runner1"]
        for p in peers["peers"]:
            assert {"peer_id", "role", "arch", "runner_name", "connected_since", "last_seen",
                    "stats"} <= set(p) and p["role"] == "runner"
        by_name = {p["runner_name"]: p for p in peers["peers"]}
        own = first.stats()
        reported = by_name["runner0"]["stats"]
        assert {k: reported[k] for k in ("requests", "api_calls_made", "api_calls_saved")} == \
            {k: own[k] for k in ("requests", "api_calls_made", "api_calls_saved")}

        mcp = await get_json(fleet.hub_url + "/api/mcp/peers")
        assert (mcp["enabled"], mcp["active"], mcp["peer_count"]) == (True, True, 2)
        assert fleet.hub.running is not None and mcp["peer_id"] == fleet.hub.running.peer_id
        assert {p["peer_id"] for p in mcp["peers"]} == {p["peer_id"] for p in peers["peers"]}

        cache = await get_json(fleet.hub_url + "/api/mcp/cache/stats")
        # On a hub the cache view is the fleet's: the runners make (and save) the calls.
        for name in ("requests", "local_hits", "peer_hits", "misses", "api_calls_made",
                     "api_calls_saved", "hit_rate"):
            assert cache[name] == stats[f"fleet_{name}"], name
        assert cache["total_entries"] == stats["total_entries"]
        assert cache["total_size_mb"] == round(stats["bytes_stored"] / 2**20, 3)

        runner_cache = await get_json(first.endpoint + "/api/mcp/cache/stats")
        runner_stats = await get_json(first.endpoint + "/_p2p/stats")
        for name in ("total_entries", "hit_rate", "local_hits", "peer_hits", "misses",
                     "api_calls_made", "api_calls_saved"):
            assert runner_cache[name] == runner_stats[name], name
        runner_mcp = await get_json(first.endpoint + "/api/mcp/peers")
        assert (runner_mcp["enabled"], runner_mcp["active"], runner_mcp["peer_count"]) == \
            (True, True, 1)
        assert runner_mcp["peers"][0]["role"] == "bootstrap"


async def test_local_only_runner_says_disabled(sim, tmp_path) -> None:
    daemon = PeerDaemon(runner_settings(sim, tmp_path / "alone", ()))
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run)
        try:
            mcp = await get_json(daemon.endpoint + "/api/mcp/peers")
            assert (mcp["enabled"], mcp["active"], mcp["peer_count"], mcp["status"]) == \
                (False, False, 0, "local-only")
            cache = await get_json(daemon.endpoint + "/api/mcp/cache/stats")
            assert {"total_entries", "total_size_mb", "hit_rate", "local_hits", "peer_hits",
                    "misses", "api_calls_made", "api_calls_saved"} <= set(cache)
        finally:
            daemon.request_shutdown()


ACTION_SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "action"


def summary_figures(text: str) -> dict[str, float]:
    """The numbers of the action's job summary, by row (and pie slice)."""
    found: dict[str, float] = {}
    saved = re.search(r"\| \*\*API calls saved\*\* \| \*\*([\d,]+)\*\* of ([\d,]+) requests \|",
                      text)
    assert saved is not None, text
    found["api_calls_saved"] = float(saved.group(1).replace(",", ""))
    found["requests"] = float(saved.group(2).replace(",", ""))
    rate = re.search(r"\| Hit rate \| ([\d.]+) % \|", text)
    assert rate is not None
    found["hit_rate_percent"] = float(rate.group(1))
    for label, key in (("Calls sent to GitHub", "api_calls_made"),
                       ("Rate limit remaining", "rate_limit_remaining")):
        match = re.search(rf"\| {label} \| ([\d,]+) \|", text)
        if match:
            found[key] = float(match.group(1).replace(",", ""))
    for label, key in (("Local cache", "local_hits"), ("Fleet", "peer_hits"),
                       ("GitHub", "misses")):
        match = re.search(rf'    "{label}" : (\d+)', text)
        found["pie_" + key] = float(match.group(1)) if match else 0.0
    return found


async def test_every_reported_figure_is_what_the_simulator_counted(sim, tmp_path) -> None:
    """The action's job summary and /metrics of each runner, held against the simulator's own
    record of the requests it served (attributed to each runner by its token), and against
    the traffic this test sent."""
    sys.path.insert(0, str(ACTION_SCRIPTS))
    import summary  # the action's summary renderer (standard library only)

    async with in_process_fleet(sim, tmp_path) as fleet:
        await traffic(fleet)
        await settled_stats(fleet)
        records = sim.records()
        sent = {"ghs_one": 7, "ghs_two": 6}  # what traffic() asked of each runner
        for runner, token in zip(fleet.runners, ("ghs_one", "ghs_two"), strict=True):
            calls = [r for r in records if r.token == token]
            counted = sum(r.counted for r in calls)
            stats = await get_json(runner.endpoint + "/_p2p/stats")
            peers = (await get_json(runner.endpoint + "/_p2p/peers"))["peers"]
            metrics = samples(await get_text(runner.endpoint + "/metrics"))

            assert metrics[("github_p2p_upstream_calls_total", ())] == len(calls)
            answered = sum(v for (name, _), v in metrics.items()
                           if name == "github_p2p_requests_total")
            assert answered == sent[token]
            assert metrics[("github_p2p_api_calls_saved_total", ())] == sent[token] - len(calls)
            if calls:
                assert metrics[("github_p2p_rate_limit_remaining", ())] == \
                    sim.config.rate_limit - counted

            text = summary.render({"status": stats["status"]}, stats, peers)
            figures = summary_figures(text)
            assert figures["requests"] == sent[token]
            assert figures["api_calls_made"] == len(calls)
            assert figures["api_calls_saved"] == sent[token] - len(calls)
            hits = figures["pie_local_hits"] + figures["pie_peer_hits"]
            assert figures["pie_misses"] == len(calls)  # no retries, no 304 in this traffic
            assert hits + figures["pie_misses"] == sent[token]
            assert figures["hit_rate_percent"] == round(100 * hits / sent[token], 1)
            if calls:
                assert figures["rate_limit_remaining"] == sim.config.rate_limit - counted
            assert "| Fleet | active: 1 bootstrap node connected |" in text
