"""The work queue's acceptance run, with real processes on loopback.

A hub and three runner daemons; every runner submits the same 30 items and runs
``github-p2p queue run`` over them. One runner is SIGKILLed (daemon and ``queue run``) while it
holds an item, and the hub is SIGKILLed and restarted mid-run. Then attempt 2 of the same run
replays only the items that failed. The hub's SQLite record is the judge.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_faults_support import START, run_parallel, start_peers, wait_until

from github_p2p.nodes.hub.queues import QUEUE_STORE_FILE
from github_p2p.testing.localfleet import LocalFleet, NodeProcess

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "github_p2p.cli", "queue"]
ITEMS = [f"item-{i:02d}" + ("-fail" if i in (7, 19) else "") for i in range(30)]
LEASE = 20.0  # seconds; short so that a reply lost with the killed hub costs little
# Each item appends "start"/"end" lines to $LOG; the victim holds its first item forever.
SCRIPT = r"""
item="$1"
echo "start $RUNNER_NAME $item $(date +%s.%N) $GITHUB_RUN_ATTEMPT" >> "$LOG"
if [ "$RUNNER_NAME" = "$VICTIM" ]; then
  echo "$item" > "$HOLD.tmp" && mv "$HOLD.tmp" "$HOLD"
  exec sleep 600
fi
sleep 0.3
echo "end $RUNNER_NAME $item $(date +%s.%N) $GITHUB_RUN_ATTEMPT" >> "$LOG"
case "$item" in *-fail) [ "$GITHUB_RUN_ATTEMPT" = 1 ] && exit 1;; esac
exit 0
"""


def queue_env(node: NodeProcess, attempt: int, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update(GITHUB_P2P_ENDPOINT=node.endpoint, GITHUB_RUN_ID="424242",
               GITHUB_RUN_ATTEMPT=str(attempt), RUNNER_NAME=node.name,
               LOG=str(tmp / "runs.log"), HOLD=str(tmp / "holding"), VICTIM="peer0")
    return env


def submit(node: NodeProcess, attempt: int, tmp: Path) -> dict[str, object]:
    done = subprocess.run([*CLI, "submit", "suite", "--lease-ttl", str(LEASE), *ITEMS],
                          env=queue_env(node, attempt, tmp), capture_output=True, text=True,
                          timeout=START, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def start_run(node: NodeProcess, attempt: int, tmp: Path) -> subprocess.Popen[str]:
    log = open(tmp / f"run-{node.name}-{attempt}.log", "w")  # noqa: SIM115 (closed by the OS)
    return subprocess.Popen([*CLI, "run", "suite", "--", "sh", "-c", SCRIPT, "sh"],
                            env=queue_env(node, attempt, tmp), stdout=log, stderr=log,
                            text=True, start_new_session=True)


def events(tmp: Path) -> list[tuple[str, str, str, float, int]]:
    path = tmp / "runs.log"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        kind, runner, item, at, attempt = line.split()
        out.append((kind, runner, item, float(at), int(attempt)))
    return out


def hub_record(hub_dir: Path, attempt: int) -> list[tuple[int, str, int, int, int]]:
    with sqlite3.connect(f"file:{hub_dir / QUEUE_STORE_FILE}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT idx, state, completions, attempts, carried FROM items "
                          "WHERE attempt = ? ORDER BY idx", (attempt,)).fetchall()
    return [tuple(row) for row in rows]


def test_three_runners_a_killed_runner_a_restarted_hub_and_a_rerun(tmp_path):
    with LocalFleet("http://127.0.0.1:9", workdir=tmp_path / "fleet") as fleet:
        hub = fleet.start_hub(timeout=START)
        peers = start_peers(fleet, 3)
        for peer in peers:
            wait_until(lambda p=peer: _health(p)["status"] == "active", START, "linked")

        # Every runner submits the same list; the first creates the queue.
        results = run_parallel([lambda p=p: submit(p, 1, tmp_path) for p in peers])
        assert sorted(r["created"] for r in results) == [False, False, True]
        assert {(r["total"], r["mode"]) for r in results} == {(30, "fleet")}

        runs = [start_run(peer, 1, tmp_path) for peer in peers]
        victim_run = runs[0]
        wait_until(lambda: (tmp_path / "holding").exists(), START, "the victim to hold an item")
        held = (tmp_path / "holding").read_text().strip()
        # SIGKILL the runner: its daemon and its queue run (and the item's command) at once.
        killed_at = time.time()
        peers[0].kill()
        os.killpg(victim_run.pid, signal.SIGKILL)
        victim_run.wait(10)

        def redelivered() -> list[float]:
            return [at for kind, runner, item, at, _ in events(tmp_path)
                    if kind == "start" and item == held and runner != "peer0"]

        wait_until(lambda: bool(redelivered()), 3 * LEASE, "the held item to be re-delivered")
        delay = redelivered()[0] - killed_at
        assert delay < LEASE, f"re-delivered after {delay:.1f} s, beyond the lease"

        # Mid-run, the hub dies (SIGKILL) and comes back on the same port and identity.
        wait_until(lambda: sum(e[0] == "end" for e in events(tmp_path)) >= 10, START,
                   "ten items done")
        hub.kill()
        restarted_during = sum(e[0] == "end" for e in events(tmp_path))
        hub = fleet.start_hub(name=hub.name, timeout=START)
        for run in runs[1:]:
            run.wait(timeout=6 * LEASE + START)
        assert restarted_during < len(ITEMS) - 1, "the hub restart was not mid-run"

        first = events(tmp_path)
        ends = Counter(item for kind, _, item, _, _ in first if kind == "end")
        starts = Counter(item for kind, _, item, _, _ in first if kind == "start")
        assert set(ends) == set(ITEMS) and set(ends.values()) == {1}, ends
        assert starts[held] == 2  # the killed runner's start, and the re-delivery
        record = hub_record(tmp_path / "fleet" / hub.name / "cache", 1)
        # Every item was completed exactly once in the hub's record.
        assert [(idx, completions) for idx, _, completions, _, _ in record] == [
            (i, 1) for i in range(30)]
        states = {ITEMS[idx]: state for idx, state, _, _, _ in record}
        assert sorted(item for item, state in states.items() if state == "failed") == [
            "item-07-fail", "item-19-fail"]
        assert record[ITEMS.index(held)][3] == 2  # two deliveries of the held item
        failing_runners = {runner for kind, runner, item, _, _ in first
                           if kind == "end" and item.endswith("-fail")}
        for peer, run in zip(peers[1:], runs[1:], strict=True):
            assert run.returncode == (1 if peer.name in failing_runners else 0)

        # Attempt 2 of the same run: the survivors submit the same list; only what failed runs.
        again = run_parallel([lambda p=p: submit(p, 2, tmp_path) for p in peers[1:]])
        assert sorted(r["created"] for r in again) == [False, True]
        assert {r["carried"] for r in again} == {28}
        reruns = [start_run(peer, 2, tmp_path) for peer in peers[1:]]
        for run in reruns:
            assert run.wait(timeout=START) == 0
        second = [e for e in events(tmp_path) if e[4] == 2]
        assert sorted(item for kind, _, item, _, _ in second if kind == "start") == [
            "item-07-fail", "item-19-fail"]
        record2 = hub_record(tmp_path / "fleet" / hub.name / "cache", 2)
        assert Counter(state for _, state, _, _, _ in record2) == {"done": 30}
        assert sum(carried for *_, carried in record2) == 28
    print(f"\nQUEUE-ACCEPTANCE redelivery_delay_s={delay:.2f} "
          f"items_done_before_hub_restart={restarted_during}", file=sys.stderr)


def _health(node: NodeProcess) -> dict[str, object]:
    import requests

    try:
        doc: dict[str, object] = requests.get(node.endpoint + "/_p2p/health", timeout=10).json()
    except (requests.RequestException, ValueError):
        return {}
    return doc
