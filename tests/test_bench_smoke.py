"""A small fleet benchmark (N=3, a tiny workload) keeps ``bench/fleet.py`` working.

It asserts counts, never times: the machine is shared and noisy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # bench/ is not an installed package, and plain `pytest` (unlike `python -m pytest`) does
    # not put the repository root on sys.path.
    sys.path.insert(0, str(ROOT))

from bench.fleet import MODES, BenchConfig, BenchReport, run_benchmark  # noqa: E402
from bench.report import (  # noqa: E402
    SECTION,
    machine,
    markdown_section,
    write_plots,
    write_section,
)

pytestmark = pytest.mark.slow

RUNNERS = 3
REQUESTS = 8


@pytest.fixture(scope="module")
def report() -> BenchReport:
    config = BenchConfig(runner_counts=(RUNNERS,), requests=REQUESTS, resources=6, skew=0.8,
                         latency=0.02, ttl=3.0, stagger=0.05, micro=False)
    return run_benchmark(config, log=lambda _line: None)


def test_every_run_is_there_and_error_free(report: BenchReport) -> None:
    labels = {(r.label, r.mode) for r in report.runs}
    assert labels == {(label, mode) for label in ("sync", "staggered", "after TTL")
                      for mode in MODES}
    for run in report.runs:
        assert run.result.errors == 0
        assert run.result.requests == RUNNERS * REQUESTS


def test_direct_pays_every_request(report: BenchReport) -> None:
    for run in report.runs:
        if run.mode == "direct":
            assert run.result.upstream_calls == run.result.quota_used == RUNNERS * REQUESTS


def test_local_pays_once_per_runner_and_resource(report: BenchReport) -> None:
    for run in report.runs:
        if run.mode == "local":
            assert run.result.upstream_calls == run.runner_distinct
            # After the TTL every runner revalidates with its own ETag: free 304s.
            expected_quota = 0 if run.phase == "after-ttl" else run.runner_distinct
            assert run.result.quota_used == expected_quota


def test_p2p_pays_once_per_resource_for_the_fleet(report: BenchReport) -> None:
    for run in report.runs:
        if run.mode != "p2p":
            continue
        assert run.result.upstream_calls == run.unique
        assert run.fleet is not None
        assert run.fleet.counters["api_calls_made"] == run.unique
        outcomes = dict(run.result.outcomes)
        assert sum(outcomes.values()) == RUNNERS * REQUESTS
        # One runner fetches or revalidates each resource; everyone else is served by the fleet.
        fetched = outcomes.get("miss", 0) + outcomes.get("revalidated", 0)
        assert fetched == run.unique
        if run.phase == "cold":
            assert outcomes.get("revalidated", 0) == 0


def test_results_section_and_plots(report: BenchReport, tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n## Someone else's section\n\nkept\n")
    plots = write_plots(report, tmp_path / "plots")
    assert [p.suffix for p in plots] == [".png", ".png"]
    assert all(p.stat().st_size > 1000 for p in plots)
    section = markdown_section(report, machine(), "python -m bench.fleet --smoke",
                               [p.relative_to(tmp_path) for p in plots])
    write_section(results, section)
    write_section(results, section)  # idempotent: the section is replaced, not appended
    text = results.read_text()
    assert text.count(SECTION) == 1
    assert "## Someone else's section\n\nkept" in text
    assert "plots/fleet_upstream_calls.png" in text
