"""What /proc says about a process: the figures the tests and benchmarks read of a node."""

from __future__ import annotations

__all__ = ["rss_mb"]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no VmRSS for {pid}")
