"""The fleet benchmark's report: Markdown tables, the machine, plots, the results file."""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from pathlib import Path

from bench.fleet import MODES, BenchReport, Run
from bench.stats import percentile

__all__ = ["SECTION", "machine", "markdown_section", "write_plots", "write_section"]

SECTION = "## Fleet benchmark (bench/fleet.py)"
_LABELS = ("sync", "staggered", "after TTL")
_COLOURS = {"direct": "tab:red", "local": "tab:orange", "p2p": "tab:blue"}


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM, Python and kernel of this machine."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo
                          if line.startswith("model name")), model)
        with open("/proc/meminfo") as meminfo:
            kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
        ram = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "unknown"
    return {"nproc": str(len(os.sched_getaffinity(0))), "cpu": model, "ram": ram,
            "python": platform.python_version(), "kernel": platform.release()}


def _ms(run: Run, q: float) -> str:
    return f"{percentile(run.result.latencies, q) * 1000:.1f}"


def _ordered(report: BenchReport) -> list[Run]:
    return sorted(report.runs, key=lambda r: (_LABELS.index(r.label), r.runners,
                                              MODES.index(r.mode)))


def _headline(report: BenchReport) -> list[str]:
    n = max(report.config.runner_counts)
    runs = {m: report.find(n, "sync", m) for m in MODES}
    after = {m: report.find(n, "after TTL", m) for m in MODES}
    p2p, local, direct = runs["p2p"], runs["local"], runs["direct"]
    if p2p is None or local is None or direct is None:
        return []
    calls = p2p.result.upstream_calls
    lines = [
        f"**Headline (N={n}, all runners starting at once, cold caches):** the p2p fleet made "
        f"**{calls} upstream calls for {p2p.unique} unique resources**"
        f"{' (the physical limit)' if calls == p2p.unique else ''}; a cache per runner made "
        f"**{local.result.upstream_calls}** ({local.result.upstream_calls / max(calls, 1):.1f}x "
        f"p2p; it pays once per runner and resource, at most N x unique = {n * p2p.unique}), "
        f"no cache **{direct.result.upstream_calls}** "
        f"({direct.result.upstream_calls / max(calls, 1):.1f}x). "
        f"p95 latency: direct {_ms(direct, 95)} ms, local {_ms(local, 95)} ms, "
        f"p2p {_ms(p2p, 95)} ms.",
    ]
    if all(after.values()):
        a = {m: r for m, r in after.items() if r is not None}
        lines.append(
            f"After the TTL (same jobs again, every entry expired): p2p "
            f"{a['p2p'].result.upstream_calls} calls / {a['p2p'].result.quota_used} quota, "
            f"local {a['local'].result.upstream_calls} calls / {a['local'].result.quota_used} "
            f"quota, direct {a['direct'].result.upstream_calls} calls / "
            f"{a['direct'].result.quota_used} quota.")
    return lines


def _calls_table(report: BenchReport) -> list[str]:
    lines = ["| workload | N | unique resources | direct: calls (quota) | local: calls (quota) "
             "| p2p: calls (quota) | local ÷ p2p | N x unique |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label in _LABELS:
        for n in report.config.runner_counts:
            runs = [report.find(n, label, m) for m in MODES]
            if any(r is None for r in runs):
                continue
            d, lo, p = (r for r in runs if r is not None)
            cells = [f"{r.result.upstream_calls} ({r.result.quota_used})" for r in (d, lo, p)]
            ratio = lo.result.upstream_calls / max(p.result.upstream_calls, 1)
            lines.append(f"| {label} | {n} | {p.unique} | {' | '.join(cells)} | {ratio:.1f}x "
                         f"| {n * p.unique} |")
    return lines


def _detail_table(report: BenchReport) -> list[str]:
    lines = ["| workload | N | mode | requests | upstream calls | quota used | p50 ms | p95 ms "
             "| p99 ms | wall s | runner process RSS MiB (max) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in _ordered(report):
        r = run.result
        lines.append(f"| {run.label} | {run.runners} | {run.mode} | {r.requests} | "
                     f"{r.upstream_calls} | {r.quota_used} | {_ms(run, 50)} | {_ms(run, 95)} | "
                     f"{_ms(run, 99)} | {r.wall:.2f} | {max(r.runner_rss_mb):.0f} |")
    return lines


def _fleet_table(report: BenchReport) -> list[str]:
    lines = ["| workload | N | hub CPU s | hub CPU ms / request | hub RSS MiB | daemon RSS MiB "
             "(max / mean) | answers: hit-local / hit-peer / miss / revalidated "
             "| coalesced waits | daemons' upstream count |",
             "|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for run in _ordered(report):
        f = run.fleet
        if f is None:
            continue
        out = dict(run.result.outcomes)
        answers = " / ".join(str(out.get(k, 0))
                             for k in ("hit-local", "hit-peer", "miss", "revalidated"))
        per_request = f.hub_cpu_s * 1000 / max(run.result.requests, 1)
        lines.append(f"| {run.label} | {run.runners} | {f.hub_cpu_s:.2f} | {per_request:.2f} | "
                     f"{f.hub_rss_mb:.0f} | {f.daemon_rss_max_mb:.0f} / "
                     f"{f.daemon_rss_mean_mb:.0f} | {answers} | "
                     f"{f.counters['coalesced_waits']} | {f.counters['api_calls_made']} |")
    return lines


def _micro_table(report: BenchReport) -> list[str]:
    lines = ["| micro-benchmark | samples | p50 ms | p95 ms | p99 ms | per second | note |",
             "|---|---:|---:|---:|---:|---:|---|"]

    def cell(value: float | None, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    for m in report.micro:
        lines.append(f"| {m.name} | {m.samples} | {cell(m.p50_ms, '.2f')} | "
                     f"{cell(m.p95_ms, '.2f')} | {cell(m.p99_ms, '.2f')} | "
                     f"{cell(m.per_second, '.0f')} | {m.note} |")
    return lines


def markdown_section(report: BenchReport, host: dict[str, str], command: str,
                     plots: Sequence[Path] = ()) -> str:
    """The whole "Fleet benchmark" section of ``bench/RESULTS.md``."""
    c = report.config
    before, after = report.load
    load = (f"load average {before[0]:.1f} at the start, {after[0]:.1f} at the end"
            if before and after else "")
    out = [
        SECTION, "",
        f"Command (from a fresh clone, {report.elapsed / 60:.1f} min for this run):", "",
        "```bash", "./scripts/bootstrap-env && " + command, "```", "",
        f"Machine: {host['nproc']} CPUs ({host['cpu']}), {host['ram']} RAM, Python "
        f"{host['python']}, Linux {host['kernel']}; {load}. The machine is shared and noisy: "
        "compare modes within this run (ratios), not absolute times across runs.", "",
        f"Workload: N runner processes (N in {', '.join(map(str, c.runner_counts))}), each "
        f"making M={c.requests} GET requests drawn from a Zipf law (s={c.skew}) over "
        f"K={c.resources} resources of one repository (the repository, its latest release, "
        "pull requests, workflow runs, a commit, releases, issues, runners, then files), so the "
        "popular resources are asked by every runner and the tail by a few. GitHub (the "
        f"simulator) answers every request after {c.latency * 1000:.0f} ms. `sync`: every "
        f"runner starts at the same moment; `staggered` (N > 1): runner i starts at "
        f"i x {c.stagger} s; "
        f"`after TTL`: the `sync` jobs again once every cached entry expired (TTL {c.ttl:.0f} s "
        "from a policy file in `GITHUB_P2P_POLICY`), which measures revalidation. Modes: "
        "`direct` (no cache), `local` (an in-process cache per runner: what `gh api --cache` "
        "or requests-cache give), `p2p` (each runner through its own github-p2p peer daemon, "
        "all linked to one hub; one fleet per N, started before the runs). Upstream calls and "
        "quota are the simulator's own records; quota counts the calls that spent primary "
        "rate-limit budget (a 304 is free).", "",
        *_headline(report), "",
        "### Upstream calls and quota, side by side", "",
        *_calls_table(report), "",
        "`local` pays once per resource *per runner* (the sum over runners of the resources "
        "each asked); p2p pays once per resource for the whole fleet. After the TTL, `local` "
        "revalidates each entry with the runner's own ETag (a free 304, but still one call per "
        "runner and resource); p2p revalidates each resource once for the fleet: free when the "
        "revalidating runner owns the ETag or the resource has a `Last-Modified` (single "
        "objects), a full counted 200 for lists fetched by another runner (ETags are "
        "token-specific and GitHub lists carry no `Last-Modified`).", "",
        "### Latency, wall time, memory", "",
        *_detail_table(report), "",
        "Latency is per request as the runner saw it (through the daemon's endpoint in p2p "
        "mode). Every process of a run shares this machine: N runner processes, and in p2p "
        "mode N daemons (each an HTTP server and a libp2p host) and the hub, plus the "
        "simulator and whatever else runs here. A p2p request costs CPU in the runner's "
        "daemon (and, on a local miss, in the hub), so with many runners on 2 cores p2p "
        "latency and wall time measure CPU contention rather than the network; on real CI "
        "each daemon has its runner's machine to itself, which the N=1 rows approximate. "
        "Runner process RSS is the peak of the process making the requests (the in-process "
        "cache lives there in `local` mode); in p2p mode each runner also has a peer daemon, "
        "below.", "",
        "### What the fleet costs (p2p runs)", "",
        *_fleet_table(report), "",
        "Hub CPU is utime + stime from `/proc/<pid>/stat` over the run; RSS is `VmRSS` after "
        "the run. Answers are the `X-GitHub-P2P-Cache` headers the runners received; the "
        "daemons' upstream count (from `/_p2p/stats`) equals the simulator's count in every "
        "run (checked by the benchmark).", "",
    ]
    if report.micro:
        out += ["### Micro-benchmarks", "",
                "On the smallest fleet of two runners or more, GitHub's latency set to 0 so only "
                "our own overheads show; through the local endpoint means an HTTP GET to the "
                "runner's daemon, as `curl` or `GitHubClient` would do.", "",
                *_micro_table(report), ""]
    if plots:
        out += ["### Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in plots] + [""]
    return "\n".join(out).rstrip() + "\n"


def write_section(path: Path, section: str, title: str = SECTION) -> None:
    """Replace (or add) the section ``title`` of ``path``; other sections stay as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def write_plots(report: BenchReport, directory: Path) -> list[Path]:
    """Upstream calls vs N and p95 latency vs N, per mode, one panel per workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    labels = [label for label in _LABELS
              if any(r.label == label for r in report.runs)]
    written = []
    for name, title, value, log_scale in (
        ("fleet_upstream_calls.png", "upstream calls to GitHub",
         lambda r: r.result.upstream_calls, True),
        ("fleet_p95_latency.png", "p95 latency per request, ms",
         lambda r: percentile(r.result.latencies, 95) * 1000, False),
    ):
        fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.8), squeeze=False)
        for column, (ax, label) in enumerate(zip(axes[0], labels, strict=True)):
            quota_lines = False
            for mode in MODES:
                runs = [r for r in _ordered(report) if r.label == label and r.mode == mode]
                xs = [r.runners for r in runs]
                ax.plot(xs, [value(r) for r in runs], marker="o", color=_COLOURS[mode],
                        label=mode)
                if log_scale and any(r.result.quota_used != r.result.upstream_calls
                                     for r in runs):
                    quota_lines = True
                    ax.plot(xs, [r.result.quota_used for r in runs], linestyle="--",
                            marker="x", color=_COLOURS[mode], alpha=0.7,
                            label=f"{mode}: quota used")
            if log_scale:
                runs = [r for r in _ordered(report) if r.label == label and r.mode == "p2p"]
                ax.plot([r.runners for r in runs], [r.unique for r in runs], linestyle=":",
                        color="grey", label="unique resources")
                # symlog: a quota of 0 (free 304s) still shows.
                ax.set_yscale("symlog", linthresh=1)
                ax.set_ylim(bottom=0)
            if column == 0 or quota_lines:
                ax.legend(fontsize="x-small")
            ax.set_title(label)
            ax.set_xlabel("runners (N)")
            ax.set_xticks(sorted(report.config.runner_counts))
            ax.grid(True, alpha=0.3)
        axes[0][0].set_ylabel(title)
        fig.suptitle(f"github-p2p fleet benchmark: {title}", fontsize="medium")
        fig.tight_layout()
        path = directory / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
