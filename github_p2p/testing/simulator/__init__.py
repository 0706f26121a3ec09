"""A GitHub REST API simulator: the one fake of the project.

It behaves like GitHub where a cache can tell the difference (token-specific ETags,
``Last-Modified`` only on single objects, free 304s, per-repository budgets for ``ghs_``
tokens, secondary limits, pagination links) and records every request it serves, so tests,
the demo and benchmarks can assert exact upstream counts.

In-process::

    with GitHubSimulator(SimulatorConfig(latency=0.0, rate_limit=5000)) as sim:
        os.environ["GITHUB_API_URL"] = sim.url
        ...
        assert sim.upstream_count("/repos/o/r", counted_only=True) == 1

From another process: ``python -m github_p2p.testing.simulator --port 0 --ready-file F`` and
:class:`SimulatorClient` on the URL it prints (the ``/_simulator/*`` control plane).
"""

from __future__ import annotations

from github_p2p.testing.simulator.client import SimulatorClient
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.records import RequestRecord
from github_p2p.testing.simulator.server import GitHubSimulator

__all__ = ["GitHubSimulator", "RequestRecord", "SimulatorClient", "SimulatorConfig"]
