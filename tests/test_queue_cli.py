"""``github-p2p queue`` against a real runner daemon without a fleet (local-only).

The daemon runs the queue itself, so ``queue run`` works through the whole list on one runner.
Every command is a real process talking to the daemon's endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from github_p2p.core.queue import QueuePolicy
from github_p2p.core.queueseal import QueueRef
from github_p2p.errors import QueueConflictError, QueueNotFoundError, StaleLeaseError
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.workqueue.api import Claim
from github_p2p.workqueue.client import EndpointWorkQueue

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "github_p2p.cli", "queue"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    tmp = tmp_path_factory.mktemp("queue-cli")
    with LocalFleet("http://127.0.0.1:9", workdir=tmp) as fleet:
        yield fleet.start_peer(bootstrap="", name="solo", timeout=60)


def env(daemon: NodeProcess, run_id: str, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    out.update({"GITHUB_P2P_ENDPOINT": daemon.endpoint, "GITHUB_RUN_ID": run_id,
                "GITHUB_RUN_ATTEMPT": "1", **extra})
    return out


def queue(daemon: NodeProcess, run_id: str, *args: str, check: int | None = 0,
          **extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*CLI, *args], env=env(daemon, run_id, **extra), text=True,
                          capture_output=True, timeout=120, check=False)
    if check is not None:
        assert done.returncode == check, (done.stdout, done.stderr)
    return done


def test_submit_next_done_status_and_drained(daemon, tmp_path):
    items = tmp_path / "items.txt"
    items.write_text("# the suite\ntests/b.py\n\ntests/c.py\n")
    # ITEMs on the command line come first, then the lines of each --file.
    first = queue(daemon, "r1", "submit", "q", "--file", str(items), "tests/a.py")
    assert json.loads(first.stdout) == {
        "created": True, "total": 3, "carried": 0, "mode": "local",
        "notice": "no fleet (local-only): this runner works through the whole queue 'q' "
                  "(run r1, attempt 1) alone"}
    assert "no fleet" in first.stderr
    again = queue(daemon, "r1", "submit", "q", "tests/a.py", "tests/b.py", "tests/c.py")
    assert json.loads(again.stdout)["created"] is False

    claimed = json.loads(queue(daemon, "r1", "next", "q", "--holder", "me").stdout)
    assert claimed == {"id": 0, "item": "tests/a.py"}
    status = json.loads(queue(daemon, "r1", "status", "q").stdout)
    assert (status["ready"], status["leased"], status["done"], status["failed"]) == (2, 1, 0, 0)
    assert [(h["holder"], h["id"]) for h in status["holders"]] == [("me", 0)]
    assert 0 < status["holders"][0]["expires_in"] <= 60

    done = json.loads(queue(daemon, "r1", "done", "q", "0").stdout)
    assert done == {"id": 0, "state": "done", "outcome": "done"}
    assert json.loads(queue(daemon, "r1", "done", "q", "0").stdout)["outcome"] == "repeat"
    for expected in ("tests/b.py", "tests/c.py"):
        claim = json.loads(queue(daemon, "r1", "next", "q").stdout)
        assert claim["item"] == expected
        queue(daemon, "r1", "done", "q", str(claim["id"]), "--failed")
    drained = queue(daemon, "r1", "next", "q", check=3)
    assert drained.stdout == ""
    final = json.loads(queue(daemon, "r1", "status", "q", "--wait", "5").stdout)
    assert (final["done"], final["failed"], final["drained"]) == (1, 2, True)


def test_next_waits_while_another_holds_the_last_item(daemon):
    queue(daemon, "r2", "submit", "q", "--lease-ttl", "2", "only")
    assert json.loads(queue(daemon, "r2", "next", "q").stdout)["item"] == "only"
    # Nothing is ready, but the item is leased: next waits, and gets it when the lease lapses.
    again = json.loads(queue(daemon, "r2", "next", "q").stdout)
    assert again == {"id": 0, "item": "only"}
    status = json.loads(queue(daemon, "r2", "status", "q").stdout)
    assert status["leased"] == 1


def test_a_different_list_is_an_error_naming_both(daemon):
    queue(daemon, "r3", "submit", "q", "a", "b", "c")
    refused = queue(daemon, "r3", "submit", "q", "a", "x", check=1)
    assert ("queue 'q' (run r3, attempt 1) already holds another list: 3 items there, 2 in "
            "this submission; they first differ at item 1: 'b' there, 'x' here") in refused.stderr
    assert "Traceback" not in refused.stderr


def test_run_works_through_the_list_with_the_item_appended(daemon, tmp_path):
    log = tmp_path / "ran.log"
    queue(daemon, "r4", "submit", "suite", "ok-1", "bad-2", "ok-3")
    script = 'echo "$1" >> "$LOG"; case "$1" in bad-*) exit 4;; esac'
    ran = queue(daemon, "r4", "run", "suite", "--", "sh", "-c", script, "sh", check=1,
                LOG=str(log))
    assert log.read_text().split() == ["ok-1", "bad-2", "ok-3"]
    assert "no fleet: this runner works through the whole queue 'suite' alone" in ran.stderr
    assert "item 1 'bad-2' failed (exit 4)" in ran.stderr
    assert "this runner ran 3 item(s) (1 failed)" in ran.stderr
    status = json.loads(queue(daemon, "r4", "status", "suite").stdout)
    assert (status["done"], status["failed"], status["drained"]) == (2, 1, True)
    # A drained queue: run does nothing and succeeds.
    assert "ran 0 item(s)" in queue(daemon, "r4", "run", "suite", "--", "false").stderr


def start_run(daemon: NodeProcess, run_id: str, name: str, script: str, mark: Path
              ) -> subprocess.Popen[str]:
    """``queue run NAME -- sh -c SCRIPT``, returned once the first item's command touched
    ``mark`` (the script's ``$MARK``)."""
    proc = subprocess.Popen([*CLI, "run", name, "--", "sh", "-c", script, "sh"],
                            env=env(daemon, run_id, MARK=str(mark)), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not mark.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate())
        time.sleep(0.05)
    return proc


def test_run_passes_sigterm_on_and_leaves_the_item_unreported(daemon, tmp_path):
    queue(daemon, "r5", "submit", "slow", "one", "two")
    proc = start_run(daemon, "r5", "slow", 'touch "$MARK"; exec sleep 600', tmp_path / "mark")
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    status = json.loads(queue(daemon, "r5", "status", "slow").stdout)
    assert (status["leased"], status["ready"], status["done"]) == (1, 1, 0)


@pytest.mark.parametrize("args, message", [
    (["run", "q"], "give the command after --"),
    (["run", "q", "--holder", "x", "--", "true"], "put options before NAME"),
    (["submit", "a\nb", "x"], "control characters"),
    (["next", "q", "--attempt", "0"], "positive integer"),
])
def test_usage_errors_exit_2(daemon, args, message):
    done = queue(daemon, "r6", *args, check=2)
    assert message in done.stderr and "Traceback" not in done.stderr


def test_no_endpoint_and_unknown_queue(daemon):
    bare = {k: v for k, v in env(daemon, "r7").items() if k != "GITHUB_P2P_ENDPOINT"}
    done = subprocess.run([*CLI, "next", "q"], env=bare, text=True, capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "GITHUB_P2P_ENDPOINT" in done.stderr
    missing = queue(daemon, "r7", "next", "never", check=1)
    assert "queue 'never' (run r7, attempt 1)" in missing.stderr
    assert "submit it first" in missing.stderr


def test_bad_run_attempt_env_is_a_usage_error(daemon):
    done = queue(daemon, "r8", "status", "q", check=2, GITHUB_RUN_ATTEMPT="two")
    assert "GITHUB_RUN_ATTEMPT" in done.stderr




def test_run_heartbeats_keep_a_long_item_from_lapsing(daemon, tmp_path):
    queue(daemon, "r9", "submit", "long", "--lease-ttl", "2", "only")
    proc = start_run(daemon, "r9", "long", 'touch "$MARK"; sleep 5', tmp_path / "mark")
    try:
        # Another runner asks while the item runs for 2.5 leases: had the lease lapsed, it
        # would get the item; renewed, it waits until the queue is drained.
        other = queue(daemon, "r9", "next", "long", check=None)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert other.returncode == 3, (other.stdout, other.stderr)
    assert "lease lost" not in err


async def test_the_async_interface_at_the_endpoint(daemon):
    work = EndpointWorkQueue(daemon.endpoint)
    ref = QueueRef("mcp", "r10", 1)
    submitted = await work.submit(ref, ["x", "y"], QueuePolicy(lease_ttl=30))
    assert (submitted.created, submitted.total, submitted.mode) == (True, 2, "local")
    claim = await work.claim(ref, holder="agent")
    assert isinstance(claim, Claim) and (claim.id, claim.item, claim.lease_ttl) == (0, "x", 30)
    renewal = await work.heartbeat(ref, claim.id, claim.token)
    assert renewal.id == 0 and 0 < renewal.expires_in <= 30
    status = await work.status(ref)
    assert [(h.holder, h.id) for h in status.holders] == [("agent", 0)]
    with pytest.raises(StaleLeaseError, match="held by another lease"):
        await work.complete(ref, claim.id, "not-the-token")
    done = await work.complete(ref, claim.id, claim.token, ok=False)
    assert (done.state, done.outcome) == ("failed", "failed")
    with pytest.raises(QueueConflictError, match="'y' there, 'z' here"):
        await work.submit(ref, ["x", "z"])
    with pytest.raises(QueueNotFoundError):
        await work.status(QueueRef("missing", "r10", 1))
