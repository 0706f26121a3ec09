#!/usr/bin/env python3
"""The stop action: stop the peer daemon, then write its statistics to the job summary.

Order: read the statistics while the daemon still serves (``github-p2p stats --json``, else
``GET /_p2p/stats``), ask it to stop (``github-p2p stop``), then fall back to SIGTERM on the pid
from the pid file and SIGKILL after a bound. Prints the daemon's log tail when it failed. Never
fails the job: every path ends with exit code 0.

Environment: GITHUB_P2P_STATE_DIR and GITHUB_P2P_ENDPOINT (exported by the action),
GP_STOP_TIMEOUT, GP_SUMMARY, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_ENV.
Standard library only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from actionlib import annotate, pid_alive, truthy

LOG_TAIL_LINES = 60
# Always in the table; the other counters only when the daemon reports them.
REQUIRED = frozenset({"status", "connected_peers", "requests", "local_hits", "peer_hits",
                      "api_calls_made", "api_calls_saved", "hit_rate"})

# (label, stats key, format) in the order of the summary table.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("Status", "status", "text"),
    ("Connected peers", "connected_peers", "int"),
    ("Requests", "requests", "int"),
    ("Local hits", "local_hits", "int"),
    ("Peer hits", "peer_hits", "int"),
    ("Misses", "misses", "int"),
    ("Upstream API calls", "api_calls_made", "int"),
    ("API calls saved", "api_calls_saved", "int"),
    ("Hit rate", "hit_rate", "rate"),
    ("Free revalidations (304)", "revalidations_304", "int"),
    ("Coalesced waits", "coalesced_waits", "int"),
    ("Errors", "errors", "int"),
    ("Rate limit remaining", "rate_limit_remaining", "int"),
)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def fmt(value: Any, kind: str) -> str:
    if value is None or value == "":
        return "n/a"
    if kind == "rate":
        try:
            rate = float(value)
        except (TypeError, ValueError):
            return str(value)
        # hit_rate may be a fraction or a percentage; show a percentage either way.
        return f"{rate * 100 if rate <= 1 else rate:.1f} %"
    if kind == "int":
        try:
            return f"{int(value):,}"
        except (TypeError, ValueError):
            return str(value)
    return str(value).replace("|", "\\|")


def summary_markdown(stats: dict[str, Any] | None, state: dict[str, Any], note: str) -> str:
    lines = ["### github-p2p fleet cache", ""]
    if stats is None:
        lines += ["| Metric | Value |", "|---|---:|",
                  f"| Status | {fmt(state.get('status') or 'not started', 'text')} |", "",
                  f"No statistics: {note}", ""]
        return "\n".join(lines) + "\n"
    lines += ["| Metric | Value |", "|---|---:|"]
    merged = {"status": state.get("status"), **stats}
    for label, key, kind in ROWS:
        if key in REQUIRED or key in merged:
            lines.append(f"| {label} | {fmt(merged.get(key), kind)} |")
    lines.append("")
    if note:
        lines += [note, ""]
    return "\n".join(lines) + "\n"


class Stop:
    """One run of the stop action."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        state_dir = env.get("GITHUB_P2P_STATE_DIR", "")
        self.state_dir = Path(state_dir) if state_dir else None
        self.state: dict[str, Any] = {}
        if self.state_dir is not None:
            try:
                self.state = json.loads((self.state_dir / "state.json").read_text("utf-8"))
            except (OSError, ValueError):
                self.state = {}
        self.endpoint = env.get("GITHUB_P2P_ENDPOINT") or str(self.state.get("endpoint") or "")
        self.exe = str(self.state.get("bin") or "")
        try:
            self.timeout = float(env.get("GP_STOP_TIMEOUT") or 15)
        except ValueError:
            self.timeout = 15.0

    def cli(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str] | None:
        if not self.exe or not Path(self.exe).exists():
            return None
        env = dict(self.env)
        env["GITHUB_P2P_ENDPOINT"] = self.endpoint
        try:
            return subprocess.run([self.exe, *args], env=env, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None

    def read_stats(self) -> dict[str, Any] | None:
        done = self.cli("stats", "--json")
        if done is not None and done.returncode == 0:
            try:
                data = json.loads(done.stdout)
                if isinstance(data, dict):
                    return data
            except ValueError:
                pass
        if self.endpoint:
            try:
                with urllib.request.urlopen(self.endpoint.rstrip("/") + "/_p2p/stats",
                                            timeout=5) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                    return data if isinstance(data, dict) else None
            except (OSError, ValueError):
                return None
        return None

    def pid(self) -> int | None:
        pid_file = Path(str(self.state.get("pid_file") or ""))
        if not self.state.get("pid_file") and self.state_dir is not None:
            pid_file = self.state_dir / "peer.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def shut_down(self, pid: int | None) -> str:
        """Stop the daemon; returns how: 'stop', 'sigterm', 'sigkill', 'gone' or 'unknown'."""
        if pid is not None and not pid_alive(pid):
            return "gone"
        done = self.cli("stop", timeout=self.timeout)
        if pid is None:
            return "stop" if done is not None and done.returncode == 0 else "unknown"
        if wait_gone(pid, self.timeout if done is not None and done.returncode == 0 else 1.0):
            return "stop"
        for sig, how, wait in ((signal.SIGTERM, "sigterm", self.timeout),
                               (signal.SIGKILL, "sigkill", 5.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return how
            except PermissionError:
                return "unknown"
            if wait_gone(pid, wait):
                return how
        return "unknown"

    def print_log_tail(self) -> None:
        log = Path(str(self.state.get("log") or ""))
        if not self.state.get("log") and self.state_dir is not None:
            log = self.state_dir / "peer.log"
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = "(no daemon log)"
        print("::group::github-p2p: daemon log (tail)", flush=True)
        print("\n".join(text.splitlines()[-LOG_TAIL_LINES:]) or "(empty log)", flush=True)
        print("::endgroup::", flush=True)

    def run(self) -> int:
        if self.state_dir is None or not self.state:
            print("github-p2p was not started in this job; nothing to stop.", flush=True)
            self.write_summary(None, "the github-p2p action did not run in this job.")
            return 0
        failed_reason = str(self.state.get("failed") or "")
        pid = self.pid()
        stats = None if failed_reason else self.read_stats()
        how = "gone" if failed_reason else self.shut_down(pid)

        note = ""
        show_log = bool(failed_reason)
        if failed_reason:
            note = (f"The daemon did not start ({failed_reason}): "
                    "the job used the GitHub API directly.")
        elif how == "gone":
            note = "The daemon had exited before the stop action ran."
            show_log = True
        elif how in ("sigterm", "sigkill", "unknown"):
            note = {"sigterm": "The daemon ignored `github-p2p stop` and was sent SIGTERM.",
                    "sigkill": "The daemon did not stop on SIGTERM and was killed.",
                    "unknown": "The daemon could not be stopped."}[how]
            show_log = True
        print(f"github-p2p stopped ({how}).", flush=True)
        if note and not failed_reason:  # a failed start was reported by the start step
            annotate("warning", note)
        elif note:
            print(note, flush=True)
        if show_log:
            self.print_log_tail()
        self.write_summary(stats, note or ("" if stats is not None
                                           else "the daemon did not answer."))
        outputs = {"stats": json.dumps(stats, separators=(",", ":")) if stats else "{}"}
        self.append("GITHUB_OUTPUT", outputs)
        # Later steps must not keep calling a daemon that is gone.
        self.append("GITHUB_ENV", {"GITHUB_P2P_ENDPOINT": ""})
        return 0

    def write_summary(self, stats: dict[str, Any] | None, note: str) -> None:
        if not truthy(self.env.get("GP_SUMMARY"), default=True):
            return
        text = summary_markdown(stats, self.state, note)
        target = self.env.get("GITHUB_STEP_SUMMARY")
        if not target:
            print(text, flush=True)
            return
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(text)

    def append(self, var: str, values: dict[str, str]) -> None:
        target = self.env.get(var)
        if not target:
            return
        with open(target, "a", encoding="utf-8") as fh:
            for key, value in values.items():
                fh.write(f"{key}={value}\n")


def main() -> int:
    try:
        return Stop(dict(os.environ)).run()
    except Exception as exc:  # the stop action never fails the job
        annotate("warning", f"the stop step failed unexpectedly: {exc!r}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
