"""Makespan of a test suite split over runners: static split against the work queue.

    .venv/bin/python -m bench.queue_makespan [--runners 4] [--tests 200] [--work 96]
                                             [--seed 7] [--no-write]

A simulated suite of ``--tests`` tests with skewed durations (a lognormal body and a few long
integration tests clustered together, as they are in real suites; ``--work`` seconds in
all, so the whole benchmark runs in well under a minute) is run on ``--runners`` runners
two ways, for real:

* **static**: each runner runs a contiguous quarter of the list (what pytest-split or
  ``circleci tests split`` do without timing data), one process per test;
* **queue**: a hub and one ``github-p2p peer`` per runner; every runner submits the list and
  runs ``github-p2p queue run`` over it, one process per test.

Both are launched at the same moment, after the fleet is up, so they share the (noisy)
machine's conditions; the tests sleep, so the two hardly compete.

Each test is ``bash -c 'sleep D'`` recording its start and end. The makespan is from the
launch of the runners to the last end. The ideal is the total work divided by the runners (or
the longest test, if larger); round-robin and duration-based (LPT, perfect timings) static
splits are computed alongside for reference. It rewrites its section of bench/RESULTS.md and
draws docs/queue-timeline.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import write_section
from github_p2p.testing.localfleet import LocalFleet

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "github_p2p.cli", "queue"]
SECTION = "## Work queue makespan (bench/queue_makespan.py)"
#: One test: records "<start> <end> <runner> <test>" (bash's clock, no extra processes).
TEST = ('a=$EPOCHREALTIME; sleep "${1##*@}"; '
        'echo "$a $EPOCHREALTIME $RUNNER_NAME $1" >> "$TIMELINE"')


@dataclass(frozen=True)
class Span:
    """One test as it ran."""

    runner: str
    test: str
    start: float
    end: float


def make_suite(tests: int, work: float, seed: int) -> list[tuple[str, float]]:
    """``(name, seconds)`` in file order: lognormal unit tests, a cluster of long ones."""
    rng = random.Random(seed)
    long_count = max(1, tests // 33)
    body = [rng.lognormvariate(0.0, 0.9) for _ in range(tests - long_count)]
    slow = [rng.uniform(8.0, 12.0) for _ in range(long_count)]  # integration tests
    scale = work / (sum(body) + sum(slow))
    names = [f"tests/unit/test_{i:03d}.py" for i in range(len(body))]
    at = len(names) * 2 // 3  # "tests/integration/..." sorts among the others
    suite = [(n, d * scale) for n, d in zip(names, body, strict=True)]
    suite[at:at] = [(f"tests/integration/test_{i}.py", d * scale) for i, d in enumerate(slow)]
    return suite


def item(name: str, seconds: float) -> str:
    """The queue item (and command argument) of a test: its name and duration."""
    return f"{name}@{seconds:.3f}"


def static_groups(suite: list[tuple[str, float]], runners: int) -> list[list[tuple[str, float]]]:
    """Contiguous groups of equal count, in file order."""
    size, extra = divmod(len(suite), runners)
    groups, start = [], 0
    for index in range(runners):
        end = start + size + (index < extra)
        groups.append(suite[start:end])
        start = end
    return groups


def _list_scheduling(durations: list[float], runners: int) -> float:
    """Makespan of handing each test, in order, to the first free runner (a queue)."""
    free = [0.0] * runners
    for d in durations:
        free[free.index(min(free))] += d
    return max(free)


def shuffled(suite: list[tuple[str, float]], runners: int, trials: int, seed: int
             ) -> dict[str, tuple[float, float]]:
    """Median and worst makespan over ``trials`` random orders of the same tests, computed:
    how much a split without timings depends on where the slow tests happen to sit."""
    rng = random.Random(seed)
    durations = [d for _, d in suite]
    results: dict[str, list[float]] = {"contiguous": [], "round_robin": [], "queue": []}
    for _ in range(trials):
        rng.shuffle(durations)
        size = len(durations) // runners
        results["contiguous"].append(max(sum(durations[i * size:(i + 1) * size])
                                          for i in range(runners)))
        results["round_robin"].append(max(sum(durations[i::runners]) for i in range(runners)))
        results["queue"].append(_list_scheduling(durations, runners))
    return {name: (sorted(v)[len(v) // 2], max(v)) for name, v in results.items()}


def computed(suite: list[tuple[str, float]], runners: int) -> dict[str, float]:
    """Makespans without overheads: ideal, static splits, and list scheduling (a queue)."""
    durations = [d for _, d in suite]
    ideal = max(sum(durations) / runners, max(durations))
    contiguous = max(sum(d for _, d in g) for g in static_groups(suite, runners))
    round_robin = max(sum(durations[i::runners]) for i in range(runners))
    lpt = [0.0] * runners
    for d in sorted(durations, reverse=True):
        lpt[lpt.index(min(lpt))] += d
    return {"ideal": ideal, "static_contiguous": contiguous, "static_round_robin": round_robin,
            "static_lpt_perfect_timings": max(lpt),
            "queue_file_order": _list_scheduling(durations, runners)}


def read_timeline(path: Path) -> list[Span]:
    spans = []
    for line in path.read_text().splitlines():
        start, end, runner, test = line.split()
        spans.append(Span(runner, test.rsplit("@", 1)[0], float(start), float(end)))
    return spans


def launch_static(suite: list[tuple[str, float]], runners: int, timeline: Path
                  ) -> list[subprocess.Popen[bytes]]:
    """Each runner runs its contiguous group, one process per test."""
    loop = f'for t in "$@"; do bash -c {_quote(TEST)} bash "$t"; done'
    return [subprocess.Popen(["bash", "-c", loop, "bash", *(item(*t) for t in group)],
                             env={**os.environ, "RUNNER_NAME": f"runner{index + 1}",
                                  "TIMELINE": str(timeline)})
            for index, group in enumerate(static_groups(suite, runners))]


@dataclass(frozen=True)
class Round:
    """One launch of both splits: the launch time, and each split's makespan and tests."""

    started: float
    static: tuple[float, list[Span]]
    queue: tuple[float, list[Span]]


def queue_fleet(fleet: LocalFleet, runners: int) -> list[dict[str, str]]:
    """A hub and a daemon per runner; the environment of each runner's commands."""
    fleet.start_hub(timeout=120)
    peers = [fleet.start_peer(wait=False, name=f"runner{i + 1}") for i in range(runners)]
    for peer in peers:
        peer.wait_ready(120)
    return [{**os.environ, "GITHUB_P2P_ENDPOINT": peer.endpoint, "GITHUB_RUN_ATTEMPT": "1",
             "RUNNER_NAME": peer.name} for peer in peers]


def run_rounds(suite: list[tuple[str, float]], runners: int, tmp: Path, rounds: int = 1
               ) -> list[Round]:
    """Each round launches both splits at the same moment (one fleet for all rounds, a new
    run id per round), so that they share the machine's conditions."""
    (tmp / "items.txt").write_text("\n".join(item(*t) for t in suite) + "\n")
    out = []
    with LocalFleet("http://127.0.0.1:9", workdir=tmp / "fleet") as fleet:
        fleet_envs = queue_fleet(fleet, runners)
        for number in range(1, rounds + 1):
            timelines = {arm: tmp / f"{arm}-{number}.timeline" for arm in ("static", "queue")}
            envs = [{**env, "GITHUB_RUN_ID": f"round-{number}",
                     "TIMELINE": str(timelines["queue"])} for env in fleet_envs]
            for env in envs:  # every leg submits the same list, as in the workflow
                subprocess.run([*CLI, "submit", "suite", "--file", str(tmp / "items.txt")],
                               env=env, check=True, capture_output=True, timeout=120)
            started = time.time()
            procs = launch_static(suite, runners, timelines["static"])
            procs += [subprocess.Popen([*CLI, "run", "suite", "--", "bash", "-c", TEST,
                                        "bash"], env=env, stderr=subprocess.DEVNULL)
                      for env in envs]
            for proc in procs:
                proc.wait()
            status = subprocess.run([*CLI, "status", "suite"], env=envs[0], check=True,
                                    capture_output=True, text=True, timeout=60)
            counts = json.loads(status.stdout)
            assert (counts["done"], counts["failed"]) == (len(suite), 0), counts
            measured = {}
            for arm, path in timelines.items():
                spans = read_timeline(path)
                assert len(spans) == len(suite), (arm, len(spans))
                measured[arm] = (max(s.end for s in spans) - started, spans)
            out.append(Round(started, measured["static"], measured["queue"]))
    return out


def gaps(spans: list[Span]) -> list[float]:
    """Idle time between one test's end and the next one's start on the same runner."""
    out = []
    for runner in {s.runner for s in spans}:
        mine = sorted((s for s in spans if s.runner == runner), key=lambda s: s.start)
        out += [b.start - a.end for a, b in itertools.pairwise(mine)]
    return sorted(out)


def _ms(values: list[float], q: float) -> str:
    return f"{values[min(len(values) - 1, int(len(values) * q))] * 1000:.0f}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def plot(suite: list[tuple[str, float]], runs: dict[str, tuple[float, list[Span]]],
         ideal: float, started: float, path: Path) -> None:
    """The legs' timelines, one panel per split, long tests highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    long_tests = {name for name, _ in suite if "integration" in name}
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 1.3 + 1.1 * len(runs) * 2),
                             sharex=True)
    horizon = max(m for m, _ in runs.values()) * 1.05
    for ax, (label, (makespan, spans)) in zip(axes, runs.items(), strict=True):
        t0 = started
        runners = sorted({s.runner for s in spans})
        for row, runner in enumerate(runners):
            mine = [s for s in spans if s.runner == runner]
            ax.broken_barh([(s.start - t0, s.end - s.start) for s in mine], (row - 0.4, 0.8),
                           facecolors=["tab:red" if s.test in long_tests else "tab:blue"
                                       for s in mine], edgecolor="white", linewidth=0.3)
        ax.axvline(ideal, color="black", linestyle="--", linewidth=1)
        ax.text(ideal, len(runners) - 0.45, f" ideal {ideal:.1f} s", fontsize=8, va="bottom")
        ax.set_yticks(range(len(runners)), [f"leg {r[-1]}" for r in runners])
        ax.set_ylim(-0.6, len(runners) - 0.1)
        ax.set_title(f"{label}: makespan {makespan:.1f} s", fontsize=10, loc="left")
        ax.set_xlim(0, horizon)
        ax.invert_yaxis()
    axes[-1].set_xlabel("seconds since the legs were launched (blue: unit tests, red: the "
                        "long integration tests)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--work", type=float, default=96.0, help="total seconds of tests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1,
                        help="launch both splits this many times; the median round is shown")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    suite = make_suite(args.tests, args.work, args.seed)
    model = computed(suite, args.runners)
    ideal = model["ideal"]
    load = os.getloadavg()[0]
    wall = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
        rounds = run_rounds(suite, args.runners, Path(tmp), args.rounds)
    wall = time.monotonic() - wall
    load_after = os.getloadavg()[0]
    typical = sorted(rounds, key=lambda r: r.queue[0])[len(rounds) // 2]  # the median round
    started = typical.started
    static_makespan, static_spans = typical.static
    queue_makespan, queue_spans = typical.queue
    durations = sorted(d for _, d in suite)
    queue_gaps, static_gaps = gaps(queue_spans), gaps(static_spans)
    first_tests = sorted(min(s.start for s in queue_spans if s.runner == runner) - started
                         for runner in {s.runner for s in queue_spans})
    rows = [
        ("ideal (total work ÷ runners)", ideal, "computed"),
        ("static, contiguous by count (pytest-split without timings)", static_makespan,
         "measured"),
        ("github-p2p queue, file order", queue_makespan, "measured"),
        ("static, contiguous by count", model["static_contiguous"], "computed"),
        ("static, round-robin by count", model["static_round_robin"], "computed"),
        ("static by recorded durations (LPT, perfect timings)",
         model["static_lpt_perfect_timings"], "computed"),
        ("queue, file order, no overhead (list scheduling)", model["queue_file_order"],
         "computed"),
    ]
    within = queue_makespan / ideal - 1
    orders = shuffled(suite, args.runners, 1000, args.seed)
    lines = [
        SECTION, "",
        f"Command: `.venv/bin/python -m bench.queue_makespan --runners {args.runners} "
        f"--tests {args.tests} --work {args.work:g} --seed {args.seed} --rounds {args.rounds}` "
        f"(load average {load:.1f} before, {load_after:.1f} after; {wall:.0f} s in all).", "",
        f"A simulated suite of {args.tests} tests, {sum(durations):.1f} s of work: median "
        f"{durations[len(durations) // 2]:.2f} s, the {sum('integration' in n for n, _ in suite)}"
        f" long integration tests {min(d for n, d in suite if 'integration' in n):.1f} to "
        f"{max(d for n, d in suite if 'integration' in n):.1f} s, clustered in file order. "
        f"{args.runners} runners, one process per test (`bash -c 'sleep D'`). Both splits run "
        "for real and at the same time (so they share the machine's conditions; the tests "
        "sleep, so they hardly compete): the queue's runners are `github-p2p queue run` "
        "processes, each with its own `github-p2p peer` daemon, and one hub. Makespans run "
        "from the launch of the runners to the last test's end."
        + (f" The table shows the median of {len(rounds)} rounds (by the queue's makespan); "
           "all rounds, queue / static: " + ", ".join(
               f"{r.queue[0]:.1f} s ({r.queue[0] / ideal - 1:+.1%}) / {r.static[0]:.1f} s"
               for r in rounds) + "." if len(rounds) > 1 else ""), "",
        "| split | makespan s | vs ideal | how |", "|---|---:|---:|---|",
        *[f"| {label} | {value:.2f} | {value / ideal - 1:+.1%} | {how} |"
          for label, value, how in rows],
        "",
        f"The queue finished within {within:+.1%} of the ideal (target: within 10%): "
        f"{'met' if within <= 0.10 else 'NOT met'}. The static split took "
        f"{static_makespan / queue_makespan:.2f} times as long: the leg that drew the integration "
        "tests ran long while the others idled. What the queue costs: its legs started their "
        f"first test {first_tests[0]:.2f} to {first_tests[-1]:.2f} s after the launch "
        f"(`github-p2p queue run` starting up, {args.runners} at once on this machine's "
        f"{os.cpu_count()} cores; one alone starts in about 0.3 s, nearly all of it importing "
        "the package), so from its first test to its last the queue took "
        f"{queue_makespan - first_tests[0]:.2f} s "
        f"({(queue_makespan - first_tests[0]) / ideal - 1:+.1%}); between two tests a leg was "
        "idle "
        f"{_ms(queue_gaps, 0.5)} ms at the median, {_ms(queue_gaps, 0.9)} ms at p90 "
        f"(static: {_ms(static_gaps, 0.5)} / {_ms(static_gaps, 0.9)} ms), which is one claim "
        "through the daemon and the hub, the next process, and the result of the previous "
        "test sent meanwhile. These costs are fixed per test, so they weigh less on a real "
        "suite whose tests take seconds. A static split by recorded durations does as well "
        "as the queue only while the recorded timings hold; the queue needs none.", "",
        "The same 200 tests in 1,000 random orders (computed, no overheads): median and worst "
        "makespan against the ideal. Where the slow tests sit decides a split by count; it "
        "hardly matters to a queue.", "",
        "| split | median | worst |", "|---|---:|---:|",
        *[f"| {label} | {orders[key][0] / ideal - 1:+.1%} | {orders[key][1] / ideal - 1:+.1%} |"
          for label, key in (("static, contiguous by count", "contiguous"),
                             ("static, round-robin by count", "round_robin"),
                             ("queue (list scheduling)", "queue"))],
        "",
        "![legs' timelines, static against queue](../docs/queue-timeline.png)", "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(ROOT / "bench" / "RESULTS.md", section, title=SECTION)
        plot(suite, {"static split (contiguous by count)": (static_makespan, static_spans),
                     "github-p2p queue": (queue_makespan, queue_spans)},
             ideal, started, ROOT / "docs" / "queue-timeline.png")
    return 0 if within <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
