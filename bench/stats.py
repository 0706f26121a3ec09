"""Small helpers for the benchmarks: percentiles and a Markdown row."""

from __future__ import annotations

import os
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of ``samples`` (q in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples: Sequence[float]) -> str:
    """``p50 / p95 / p99`` in milliseconds."""
    return " / ".join(f"{percentile(samples, q) * 1000:.3f}" for q in (50, 95, 99))


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
