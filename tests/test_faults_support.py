"""Shared helpers of the reliability and security tests; this module holds no tests.

``test_faults*``, ``test_hostile*``, ``test_load*`` and ``test_secrets*`` run real processes on
loopback: the GitHub simulator in the test process, a hub and runner peers as ``github-p2p``
subprocesses (:class:`~github_p2p.testing.localfleet.LocalFleet`). The machine they run on is
small and shared, so every wait here is bounded but generous, and no test asserts a tight timing:
they assert counts.

The invariants every fault test checks:

* **answered**: a request GitHub alone would have answered gets GitHub's answer (status and the
  exact body, compared with what the simulator serves);
* **never wrong, never silently stale**: a body is the resource's; an answer served past its
  freshness says ``X-GitHub-P2P-Cache: stale`` and carries ``Warning: 110``;
* **accounted**: each daemon's ``requests`` equals the requests sent to it and the sum of its
  outcome counters, and ``api_calls_made`` summed over the runners equals what the simulator
  counted.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.procstat import rss_mb as rss_mb  # re-exported for the fault tests
from github_p2p.testing.simulator import GitHubSimulator

#: ``GITHUB_P2P_HEAVY_TESTS=1`` runs the full-size load variants (minutes on two cores).
HEAVY = os.environ.get("GITHUB_P2P_HEAVY_TESTS") == "1"
heavy = pytest.mark.skipif(not HEAVY, reason="full-size variant: set GITHUB_P2P_HEAVY_TESTS=1")

REPO = "octo/hello"
#: Bound on a node becoming ready: importing libp2p and PBKDF2 take seconds on a busy machine.
START = 120.0
#: Bound on one HTTP request through a daemon (fleet wait 15 s + GitHub retries + slack).
REQUEST_TIMEOUT = 90.0
OUTCOMES = ("local_hits", "peer_hits", "misses", "revalidations_304", "stale_served", "bypassed")
CACHE_HEADER = "X-GitHub-P2P-Cache"
VALID_OUTCOMES = frozenset({"hit-local", "hit-peer", "miss", "revalidated", "stale", "bypass"})


def contents(prefix: str, count: int) -> list[str]:
    """``count`` distinct file resources of the test repository."""
    return [f"/repos/{REPO}/contents/{prefix}/file{i}.txt" for i in range(count)]


def auth(token: str) -> dict[str, str]:
    """The headers of a caller using ``token``."""
    return {"Authorization": f"Bearer {token}"}


_local = threading.local()


def session() -> requests.Session:
    """One HTTP session per thread, ignoring proxy settings of the environment."""
    found: requests.Session | None = getattr(_local, "session", None)
    if found is None:
        found = requests.Session()
        found.trust_env = False
        _local.session = found
    return found


def get(node: NodeProcess, path: str, token: str) -> requests.Response:
    """GET ``path`` through ``node``'s local endpoint."""
    return session().get(node.endpoint + path, headers=auth(token), timeout=REQUEST_TIMEOUT)


def node_stats(node: NodeProcess) -> dict[str, Any]:
    """A node's ``/_p2p/stats``."""
    stats: dict[str, Any] = session().get(node.endpoint + "/_p2p/stats", timeout=30).json()
    return stats


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def start_peers(fleet: LocalFleet, count: int, **kwargs: Any) -> list[NodeProcess]:
    """Start ``count`` runner peers side by side and wait until each is ready."""
    peers = [fleet.start_peer(wait=False, **kwargs) for _ in range(count)]
    for peer in peers:
        peer.wait_ready(START)
    return peers


class Answers:
    """What GitHub answers for each path, fetched straight from the simulator once.

    The simulator's records are reset afterwards, so later counts are the fleet's alone.
    """

    def __init__(self, sim: GitHubSimulator, paths: Iterable[str]) -> None:
        self.api_url = sim.url
        self.bodies: dict[str, bytes] = {}
        for path in paths:
            resp = session().get(sim.url + path, headers=auth("ghs_reference"), timeout=30)
            assert resp.status_code == 200, (path, resp.status_code)
            self.bodies[path] = resp.content
        sim.reset_records()

    def problem(self, path: str, resp: requests.Response) -> str | None:
        """Why ``resp`` is not a right answer for ``path``, or ``None`` when it is."""
        outcome = resp.headers.get(CACHE_HEADER)
        if resp.status_code != 200:
            return f"{path}: status {resp.status_code} ({outcome}): {resp.text[:200]}"
        # The endpoint rewrites the API's absolute URLs to itself; GitHub's body is that with
        # the API base in their place.
        parts = urlsplit(resp.url)
        own = f'"{parts.scheme}://{parts.netloc}'.encode()
        if resp.content.replace(own, f'"{self.api_url}'.encode()) != self.bodies[path]:
            return f"{path}: wrong body ({outcome})"
        if outcome not in VALID_OUTCOMES:
            return f"{path}: unknown outcome {outcome!r}"
        if outcome == "stale" and "110" not in resp.headers.get("Warning", ""):
            return f"{path}: stale without a Warning header"
        return None

    def check(self, path: str, resp: requests.Response) -> str:
        """Assert ``resp`` is right for ``path``; returns its cache outcome."""
        problem = self.problem(path, resp)
        assert problem is None, problem
        return resp.headers[CACHE_HEADER]


def run_parallel(jobs: Sequence[Callable[[], Any]], timeout: float = 600.0) -> list[Any]:
    """Run ``jobs`` on threads at once; their results in order (exceptions re-raised)."""
    with concurrent.futures.ThreadPoolExecutor(max(1, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [future.result(timeout=timeout) for future in futures]


def assert_accounted(stats: Sequence[Mapping[str, Any]], upstream_calls: int,
                     sent: Sequence[int] | None = None) -> None:
    """Every runner accounts for every request; the fleet's calls are GitHub's count."""
    for index, one in enumerate(stats):
        outcomes = sum(int(one[name]) for name in OUTCOMES)
        assert one["requests"] == outcomes, (index, one)
        assert one["api_calls_saved"] <= one["requests"], (index, one)
        if sent is not None:
            assert one["requests"] == sent[index], (index, one["requests"], sent[index])
    assert sum(int(one["api_calls_made"]) for one in stats) == upstream_calls, [
        one["api_calls_made"] for one in stats]


def figures(name: str, **values: Any) -> None:
    """Print one ``FIGURES`` line (``pytest -s`` shows them; docs/security.md records them)."""
    print(f"\nFIGURES {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()), flush=True)


def open_fds(pid: int) -> int:
    """Open file descriptors of ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))
