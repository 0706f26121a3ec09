"""The hub's fleet totals from runner reports (pure: github_p2p.nodes.hub.reports)."""

from __future__ import annotations

import pytest

from github_p2p.nodes.hub.reports import FLEET_COUNTERS, FleetReports


def snapshot(requests: int, made: int, **more: object) -> dict[str, object]:
    return {"requests": requests, "api_calls_made": made, "api_calls_saved": requests - made,
            "local_hits": 0, "peer_hits": requests - made, "misses": made, **more}


def test_latest_report_replaces_the_previous_one() -> None:
    reports = FleetReports()
    reports.update("runner-a", snapshot(10, 4), now=100.0)
    reports.update("runner-a", snapshot(12, 4), now=102.0)  # cumulative: replace, never add
    reports.update("runner-b", snapshot(5, 0), now=103.0)
    totals = reports.totals()
    assert (totals["fleet_requests"], totals["fleet_api_calls_made"],
            totals["fleet_api_calls_saved"], totals["fleet_peer_hits"]) == (17, 4, 13, 13)
    assert totals["fleet_reporting_peers"] == 2
    assert totals["fleet_hit_rate"] == round(13 / 17, 4)
    latest = reports.latest("runner-a")
    assert latest is not None and latest.received_at == 102.0
    assert latest.to_json()["requests"] == 12 and latest.to_json()["hit_rate"] == 0.6667
    assert reports.latest("nobody") is None


def test_every_counter_has_a_fleet_total_and_errors_keep_their_own_name() -> None:
    totals = FleetReports().totals()
    names = {f"fleet_{n}" for n in FLEET_COUNTERS if n != "errors"}
    assert names | {"fleet_runner_errors", "fleet_hit_rate", "fleet_reporting_peers"} == set(totals)
    # A runner's own "fleet_errors" (failures to reach the fleet) is another thing entirely.
    assert "fleet_errors" not in totals
    assert totals["fleet_hit_rate"] == 0.0


def test_values_a_runner_should_not_send_are_ignored() -> None:
    reports = FleetReports()
    reports.update("r", {"requests": -5, "local_hits": True, "misses": "7", "errors": 2.5,
                         "peer_hits": 3, "status": "active", "unknown": 99}, now=1.0)
    totals = reports.totals()
    assert (totals["fleet_requests"], totals["fleet_local_hits"], totals["fleet_misses"],
            totals["fleet_runner_errors"], totals["fleet_peer_hits"]) == (0, 0, 0, 0, 3)


def test_memory_is_bounded_and_departed_runners_still_count() -> None:
    reports = FleetReports(max_peers=3)
    for i in range(10):
        reports.update(f"runner-{i}", snapshot(10, 1), now=float(i))
    totals = reports.totals()
    assert totals["fleet_requests"] == 100 and totals["fleet_api_calls_made"] == 10
    assert totals["fleet_reporting_peers"] == 10
    assert reports.latest("runner-0") is None and reports.latest("runner-9") is not None
    # A recent runner that reports again replaces its own report, as before.
    reports.update("runner-9", snapshot(20, 1), now=11.0)
    assert reports.totals()["fleet_requests"] == 110


def test_max_peers_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FleetReports(max_peers=0)
