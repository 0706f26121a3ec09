"""Fleet benchmark: direct vs a cache per runner vs github-p2p, side by side, in one run.

    ./scripts/bootstrap-env && .venv/bin/python -m bench.fleet

Against the GitHub simulator with a per-request latency (100 ms by default), for N in
{1, 5, 20} runner processes, each making M requests over K resources drawn from a Zipf law
(:mod:`bench.workload`):

* modes ``direct`` (no cache), ``local`` (one cache per runner, what ``gh api --cache`` or
  requests-cache give) and ``p2p`` (each runner through its github-p2p peer daemon, one hub);
* workloads ``sync`` (every runner starts at the same moment) and ``staggered`` (one runner
  every ``--stagger`` seconds); then ``sync`` again once every entry's TTL has expired
  (``after-ttl``: the revalidation cost). The TTL comes from a policy file handed to the
  runners through ``GITHUB_P2P_POLICY``;
* measures: upstream calls and rate-limit quota (the simulator's own records), latency
  percentiles per request, wall time, RSS of runner processes, daemons and hub, hub CPU
  (``/proc/<pid>/stat``), and the fleet's own exact counters (``/_p2p/stats``);
* micro-benchmarks (:mod:`bench.microbench`) on the smallest fleet of two runners or more.

One fleet (hub + N daemons, started concurrently) serves every workload of one N; each workload
asks for the resources of its own repository, so every workload starts with cold caches.
Results go to ``bench/RESULTS.md`` (section "Fleet benchmark") and ``bench/plots/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from bench.stats import cpu_seconds
from bench.workload import Workload, runner_distinct, unique_resources
from github_p2p.cli.demo import ModeResult, RunnerPlan, run_workload
from github_p2p.errors import ConfigError, GitHubP2PError
from github_p2p.testing.localfleet import LocalFleet, NodeProcess
from github_p2p.testing.procstat import rss_mb
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

if TYPE_CHECKING:
    from bench.microbench import MicroResult

# Runner processes re-import this module (multiprocessing does that with the main module):
# what only the parent needs (trio, matplotlib, the micro-benchmarks) is imported where used.

__all__ = ["MODES", "BenchConfig", "BenchReport", "FleetSample", "Run", "main", "run_benchmark"]

MODES = ("direct", "local", "p2p")
SECRET = "bench-fleet-secret-0001"
#: Counters of ``/_p2p/stats`` whose change over a run is reported.
_COUNTERS = ("api_calls_made", "local_hits", "peer_hits", "misses", "revalidations_304",
             "coalesced_waits", "errors", "fleet_errors")


@dataclass(frozen=True)
class BenchConfig:
    """What to run. ``ttl`` must exceed the longest workload, or entries expire mid-run."""

    runner_counts: tuple[int, ...] = (1, 5, 20)
    requests: int = 60
    resources: int = 40
    skew: float = 0.8
    latency: float = 0.1
    ttl: float = 20.0
    stagger: float = 0.25
    micro: bool = True
    seed: int = 7

    def __post_init__(self) -> None:
        if not self.runner_counts or min(self.runner_counts) < 1:
            raise ConfigError("runner counts must be at least 1")
        if min(self.requests, self.resources) < 1:
            raise ConfigError("requests and resources must be at least 1")
        if self.latency < 0 or self.stagger < 0 or self.skew < 0:
            raise ConfigError("latency, stagger and skew must not be negative")
        if self.ttl < 1:
            raise ConfigError("ttl must be at least 1 s")

    def workload(self, name: str, runners: int) -> Workload:
        """The workload ``name`` for ``runners`` runners, on a repository of its own."""
        return Workload(name=name, runners=runners,
                        requests=self.requests, resources=self.resources, skew=self.skew,
                        stagger=self.stagger if name == "staggered" else 0.0,
                        repo=f"octo/bench-n{runners}-{name}", seed=self.seed)


@dataclass(frozen=True)
class FleetSample:
    """What one p2p run cost the fleet: hub CPU and memory, daemons' memory and counters."""

    hub_cpu_s: float
    hub_rss_mb: float
    daemon_rss_max_mb: float
    daemon_rss_mean_mb: float
    counters: Mapping[str, int]


@dataclass(frozen=True)
class Run:
    """One mode on one workload and phase (``cold`` or ``after-ttl``)."""

    runners: int
    workload: str
    phase: str
    result: ModeResult
    unique: int
    runner_distinct: int
    fleet: FleetSample | None = None

    @property
    def mode(self) -> str:
        """``direct``, ``local`` or ``p2p``."""
        return self.result.mode

    @property
    def label(self) -> str:
        """``sync``, ``staggered`` or ``after TTL``."""
        return "after TTL" if self.phase == "after-ttl" else self.workload


@dataclass
class BenchReport:
    """Everything one run of the benchmark measured."""

    config: BenchConfig
    runs: list[Run] = field(default_factory=list)
    micro: list[MicroResult] = field(default_factory=list)
    elapsed: float = 0.0
    load: tuple[tuple[float, ...], tuple[float, ...]] = ((), ())

    def find(self, runners: int, label: str, mode: str) -> Run | None:
        """The run of ``mode`` with ``runners`` runners on workload/phase ``label``."""
        return next((r for r in self.runs if r.runners == runners and r.label == label
                     and r.mode == mode), None)


# -- measuring processes --------------------------------------------------------------------

def _load_average() -> tuple[float, ...]:
    with open("/proc/loadavg") as loadavg:
        return tuple(float(x) for x in loadavg.read().split()[:3])


def _counters(peers: Sequence[NodeProcess]) -> dict[str, int]:
    total = dict.fromkeys(_COUNTERS, 0)
    for peer in peers:
        stats = requests.get(peer.endpoint + "/_p2p/stats", timeout=30).json()
        for name in _COUNTERS:
            total[name] += int(stats.get(name) or 0)
    return total


# -- running --------------------------------------------------------------------------------

class _FleetBench:
    """The runs of one fleet size: one simulator, one hub, N daemons, three modes."""

    def __init__(self, config: BenchConfig, sim: GitHubSimulator, fleet: LocalFleet,
                 hub: NodeProcess, peers: list[NodeProcess], workdir: Path, policy: Path,
                 log: Callable[[str], None]) -> None:
        self.config, self.sim, self.fleet, self.hub, self.peers = config, sim, fleet, hub, peers
        self.workdir, self.policy, self.log = workdir, policy, log

    def run(self, mode: str, workload: Workload, phase: str) -> Run:
        began = time.monotonic()
        plans = workload.plans()
        if mode == "local":
            plans = [dataclasses.replace(p, cache_dir=str(
                self.workdir / f"local-{workload.repo.replace('/', '-')}-{i}"))
                for i, p in enumerate(plans)]
        sample = None
        if mode == "p2p":
            sample, result = self._p2p(plans)
        else:
            result = run_workload(mode, self.sim, plans, policy_file=self.policy)
        run = Run(workload.runners, workload.name, phase, result, unique_resources(plans),
                  runner_distinct(plans), sample)
        self.log(f"  N={run.runners:<3} {run.label:<10} {mode:<6} "
                 f"upstream {result.upstream_calls:>5}  quota {result.quota_used:>5}  "
                 f"wall {result.wall:5.1f} s  errors {result.errors}  "
                 f"({time.monotonic() - began:.1f} s with set-up)")
        if mode != "direct" and result.wall >= self.config.ttl:
            self.log(f"  warning: the run outlasted the TTL ({self.config.ttl:.0f} s): entries "
                     "expired mid-run, so counts include refetches; raise --ttl")
        if result.errors:
            raise GitHubP2PError(f"{mode} {workload.name}: {result.errors} requests failed")
        return run

    def _p2p(self, plans: list[RunnerPlan]) -> tuple[FleetSample, ModeResult]:
        pid = self.hub.process.pid
        cpu, before = cpu_seconds(pid), _counters(self.peers)
        result = run_workload("p2p", self.sim, plans, policy_file=self.policy,
                              endpoints=[p.endpoint for p in self.peers])
        hub_cpu = cpu_seconds(pid) - cpu
        after = _counters(self.peers)
        daemon_rss = [rss_mb(p.process.pid) for p in self.peers]
        counters = {k: after[k] - before[k] for k in _COUNTERS}
        if counters["api_calls_made"] != result.upstream_calls:
            raise GitHubP2PError(f"the daemons counted {counters['api_calls_made']} upstream "
                                 f"calls, the simulator {result.upstream_calls}")
        return FleetSample(hub_cpu, rss_mb(pid), max(daemon_rss),
                           sum(daemon_rss) / len(daemon_rss), counters), result

    def all_runs(self, runners: int) -> list[Run]:
        """sync (cold), staggered (cold), then sync again after the TTL."""
        sync = self.config.workload("sync", runners)
        runs: list[Run] = []
        cached_until = 0.0
        # local and p2p first: direct (no cache) runs while their entries age.
        for mode in ("local", "p2p", "direct"):
            runs.append(self.run(mode, sync, "cold"))
            if mode != "direct":
                cached_until = time.time() + self.config.ttl
        if runners > 1:
            staggered = self.config.workload("staggered", runners)
            runs += [self.run(mode, staggered, "cold") for mode in ("local", "p2p", "direct")]
        wait = cached_until + 1.0 - time.time()
        if wait > 0:
            self.log(f"  waiting {wait:.1f} s for every entry's TTL to expire")
            time.sleep(wait)
        runs += [self.run(mode, sync, "after-ttl") for mode in ("local", "p2p", "direct")]
        return runs


def _start_fleet(fleet: LocalFleet, runners: int, log: Callable[[str], None],
                 ) -> tuple[NodeProcess, list[NodeProcess]]:
    began = time.monotonic()
    hub = fleet.start_hub(timeout=180)
    # Daemons start together; each imports libp2p (~0.7 s CPU), so waiting in turn is slower.
    peers = [fleet.start_peer(wait=False) for _ in range(runners)]
    for peer in peers:
        peer.wait_ready(300)
    log(f"N={runners}: hub + {runners} daemons ready in {time.monotonic() - began:.1f} s")
    return hub, peers


def run_benchmark(config: BenchConfig, *, log: Callable[[str], None] = print) -> BenchReport:
    """Run every workload in every mode for every fleet size, then the micro-benchmarks."""
    report = BenchReport(config)
    began = time.monotonic()
    load_before = _load_average()
    micro_at = min((n for n in config.runner_counts if n >= 2), default=None)
    with tempfile.TemporaryDirectory(prefix="github-p2p-bench-") as tmp, \
            GitHubSimulator(SimulatorConfig(latency=config.latency, rate_limit=10**9)) as sim:
        workdir = Path(tmp)
        policy = workdir / "policy.yml"
        # User rules come before the built-in ones: one TTL for every resource of the bench.
        policy.write_text(f"default_ttl: {config.ttl}\nrules:\n"
                          f"  - pattern: '^/repos/'\n    ttl: {config.ttl}\n")
        # Python's default: compiled modules are cached. With PYTHONDONTWRITEBYTECODE set (and a
        # venv installed without bytecode), every daemon compiles libp2p again: ~2 s of CPU each.
        env = {"GITHUB_P2P_POLICY": str(policy), "PYTHONDONTWRITEBYTECODE": ""}
        for runners in config.runner_counts:
            with LocalFleet(sim.url, secret=SECRET, workdir=workdir / f"fleet-{runners}",
                            extra_env=env) as fleet:
                hub, peers = _start_fleet(fleet, runners, log)
                bench = _FleetBench(config, sim, fleet, hub, peers, workdir, policy, log)
                report.runs += bench.all_runs(runners)
                if config.micro and runners == micro_at:
                    from bench.microbench import run_micro

                    report.micro = run_micro(sim, hub, peers, SECRET, log=log)
    report.elapsed = time.monotonic() - began
    report.load = (load_before, _load_average())
    return report


# -- command line ---------------------------------------------------------------------------

def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc


def parse_args(argv: Sequence[str]) -> tuple[BenchConfig, Any]:
    """The benchmark's settings and output options from the command line."""
    d = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runners", type=_counts, default=d.runner_counts,
                        help="fleet sizes, comma-separated (default 1,5,20)")
    parser.add_argument("--requests", type=int, default=d.requests, help="M, per runner")
    parser.add_argument("--resources", type=int, default=d.resources, help="K, unique")
    parser.add_argument("--skew", type=float, default=d.skew, help="Zipf exponent")
    parser.add_argument("--latency", type=float, default=d.latency,
                        help="GitHub's latency per request, seconds")
    parser.add_argument("--ttl", type=float, default=d.ttl, help="cache TTL, seconds")
    parser.add_argument("--stagger", type=float, default=d.stagger,
                        help="seconds between two runners' starts in the staggered workload")
    parser.add_argument("--no-micro", action="store_true", help="skip the micro-benchmarks")
    parser.add_argument("--results", type=Path, default=Path("bench/RESULTS.md"),
                        help="Markdown file whose fleet section is rewritten")
    parser.add_argument("--plots", type=Path, default=Path("bench/plots"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(list(argv))
    try:
        config = BenchConfig(runner_counts=args.runners, requests=args.requests,
                             resources=args.resources, skew=args.skew, latency=args.latency,
                             ttl=args.ttl, stagger=args.stagger, micro=not args.no_micro)
    except ConfigError as exc:
        parser.error(str(exc))
    return config, args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the tables, write the results section and the plots."""
    from bench.report import machine, markdown_section, write_plots, write_section

    argv = list(sys.argv[1:] if argv is None else argv)
    config, args = parse_args(argv)
    command = " ".join([".venv/bin/python -m bench.fleet", *argv])
    report = run_benchmark(config, log=lambda line: print(line, flush=True))
    plots: list[Path] = []
    if not args.no_write:
        plots = write_plots(report, args.plots)
    links = [Path(os.path.relpath(p, args.results.parent)) for p in plots]
    section = markdown_section(report, machine(), command, links)
    print("\n" + section)
    if not args.no_write:
        write_section(args.results, section)
        print(f"wrote {args.results} and {len(plots)} plots in {args.plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
