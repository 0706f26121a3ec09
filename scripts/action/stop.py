#!/usr/bin/env python3
"""Stop the peer daemon and write the job summary: at the end of the job (the post step of the
action's nested ``job-end`` action) or earlier, when a workflow uses the ``stop`` action.

Order: read the statistics and the fleet's peers while the daemon still serves
(``GET /_p2p/stats``, ``/_p2p/peers``), ask it to stop (``POST /_p2p/shutdown``), then SIGTERM
the pid and SIGKILL after a bound. Prints the daemon's log tail when it failed. Whichever runs
first does the work; the end-of-job step after an early stop only says so. Never fails the job.

Environment: GITHUB_P2P_STATE_DIR (or GP_STATE_DIR), GP_WHEN (``stop`` or ``job-end``),
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

from actionlib import State, annotate, export_env, pid_alive, set_outputs, truthy
from environment import warm_bytecode
from summary import render

LOG_TAIL_LINES = 60


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def http_json(url: str, method: str = "GET", timeout: float = 5) -> Any:
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8") or "null")


class Stop:
    """One run of the stop (or end-of-job) step."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        directory = env.get("GP_STATE_DIR") or env.get("GITHUB_P2P_STATE_DIR") or ""
        self.state = State(directory) if directory else None
        self.data = self.state.read() if self.state is not None else {}
        self.when = env.get("GP_WHEN") or "stop"
        self.endpoint = str(self.data.get("endpoint") or env.get("GITHUB_P2P_ENDPOINT") or "")
        try:
            self.timeout = float(env.get("GP_STOP_TIMEOUT") or 15)
        except ValueError:
            self.timeout = 15.0

    def run(self) -> int:
        if self.state is None or not self.data:
            print("github-p2p was not started in this job; nothing to stop.", flush=True)
            if self.when == "stop":
                self.write_summary(render({"status": "not started"}, None,
                                          note="The github-p2p action did not run in this job."))
            return 0
        if self.data.get("stopped"):
            print(f"github-p2p was already stopped by the {self.data['stopped']} step, which "
                  "wrote the summary.", flush=True)
            return 0
        self.state.update(stopped=self.when)
        status = str(self.data.get("status") or "")
        if status == "off":
            print(f"github-p2p was off in this job: {self.data.get('reason', '')}", flush=True)
            self.write_summary(render(self.data, None))
            self.finish(None)
            return 0
        failed = str(self.data.get("failed") or "")
        pid = self.data.get("pid") if isinstance(self.data.get("pid"), int) else None
        stats = peers = None
        if not failed and self.endpoint:
            stats, peers = self.read_figures()
        how = "gone" if failed else self.shut_down(pid)

        note, show_log = "", bool(failed)
        if failed:
            print(f"The daemon did not run ({failed}): the job used the GitHub API directly.",
                  flush=True)
        elif how == "gone":
            note, show_log = "The daemon had exited before the job ended.", True
        elif how in ("sigterm", "sigkill", "unknown"):
            note = {"sigterm": "The daemon did not stop on request and was sent SIGTERM.",
                    "sigkill": "The daemon did not stop on SIGTERM and was killed.",
                    "unknown": "The daemon could not be stopped."}[how]
            show_log = True
        print(f"github-p2p stopped ({how}).", flush=True)
        if note and not failed:  # a failed start was reported by the start step
            annotate("warning", note)
        if show_log:
            self.print_log_tail()
        if stats is None and not note and not failed:
            note = "The daemon did not answer for its statistics."
        self.write_summary(render(self.data, stats, peers, note))
        self.finish(stats)
        self.warm_new_environment()
        return 0

    def warm_new_environment(self) -> None:
        """In the job that built the environment, complete its bytecode before actions/cache
        saves it (post steps run in reverse: this one comes first)."""
        if self.when != "job-end" or self.data.get("environment") != "built":
            return
        venv = Path(str(self.data.get("venv") or ""))
        if not (venv / "bin" / "python").exists():
            return
        try:
            with open(Path(self.data.get("log") or os.devnull).with_name("warm.log"), "a",
                      encoding="utf-8") as log:
                seconds = warm_bytecode(venv, log)
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"github-p2p: could not complete the bytecode of {venv.name}: {exc}",
                  flush=True)
            return
        print(f"github-p2p: bytecode of the new environment complete ({seconds:.1f} s)",
              flush=True)

    def read_figures(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
        """The daemon's statistics and peers; (None, None) when it does not answer."""
        base = self.endpoint.rstrip("/")
        try:
            stats = http_json(base + "/_p2p/stats")
        except (OSError, ValueError):
            return None, None
        try:
            peers = http_json(base + "/_p2p/peers")
        except (OSError, ValueError):
            peers = None
        if isinstance(peers, dict):  # {"peers": [...]} or a bare list
            peers = peers.get("peers")
        return (stats if isinstance(stats, dict) else None,
                [p for p in peers if isinstance(p, dict)] if isinstance(peers, list) else None)

    def shut_down(self, pid: int | None) -> str:
        """Stop the daemon; how: 'stop', 'sigterm', 'sigkill', 'gone' or 'unknown'."""
        if pid is not None and not pid_alive(pid):
            return "gone"
        asked = False
        if self.endpoint:
            try:
                http_json(self.endpoint.rstrip("/") + "/_p2p/shutdown", "POST")
                asked = True
            except (OSError, ValueError):
                asked = False
        if pid is None:
            return "stop" if asked else "unknown"
        if wait_gone(pid, self.timeout if asked else 1.0):
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
        log = Path(str(self.data.get("log") or ""))
        try:
            text = log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = "(no daemon log)"
        tail = "\n".join(text.splitlines()[-LOG_TAIL_LINES:]) or "(empty log)"
        print(f"::group::github-p2p: daemon log (tail)\n{tail}\n::endgroup::", flush=True)

    def write_summary(self, text: str) -> None:
        if not truthy(self.env.get("GP_SUMMARY"), default=True):
            return
        target = self.env.get("GITHUB_STEP_SUMMARY")
        if not target:
            print(text, flush=True)
            return
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(text)

    def finish(self, stats: dict[str, Any] | None) -> None:
        set_outputs({"stats": json.dumps(stats, separators=(",", ":")) if stats else "{}"})
        if self.when == "stop":
            # Later steps must not keep calling a daemon that is gone.
            export_env({"GITHUB_P2P_ENDPOINT": "", "GITHUB_P2P_MCP_URL": ""})


def main() -> int:
    try:
        return Stop(dict(os.environ)).run()
    except Exception as exc:  # stopping never fails the job
        annotate("warning", f"stopping github-p2p failed unexpectedly: {exc!r}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
