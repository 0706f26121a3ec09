#!/usr/bin/env python3
"""Step 3 of the composite action: start ``github-p2p peer`` detached and publish its state.

The daemon runs in its own session under nohup, with its output in a log file (an inherited
pipe would hold the step open). Once its ready file appears (bounded wait) this step sets the
action's outputs, exports ``GITHUB_P2P_ENDPOINT`` and reports the status: ``local-only`` as a
notice, ``degraded`` as a warning. A daemon that does not start is a warning too, and the job
goes on against the GitHub API directly; only ``fail-on-error: true`` turns it into a failure.

Environment (from the action's inputs and earlier steps): STATE_DIR, GP_BIN, GP_PORT,
GP_HTTP_PORT, GP_CACHE_DIR, GP_SECRET, GP_BOOTSTRAP_PEERS, GP_GITHUB_TOKEN, GP_REGISTRY_ISSUE,
GP_LOG_LEVEL, GP_MAX_LIFETIME, GP_STARTUP_TIMEOUT, GP_WRAP_GH, FAIL_ON_ERROR.
Standard library only: it runs before anything is known about the installed package.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from actionlib import annotate, truthy

STATUSES = ("active", "degraded", "local-only")
LOG_TAIL_LINES = 40


def _append(path_var: str, lines: list[str]) -> None:
    target = os.environ.get(path_var)
    if not target:
        for line in lines:
            print(f"{path_var}: {line}")
        return
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"refusing to write a multi-line value to {path_var}")
    with open(target, "a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines)


def set_outputs(outputs: dict[str, str]) -> None:
    _append("GITHUB_OUTPUT", [f"{k}={v}" for k, v in outputs.items()])


def export_env(values: dict[str, str]) -> None:
    _append("GITHUB_ENV", [f"{k}={v}" for k, v in values.items()])


def split_peers(text: str) -> list[str]:
    """Bootstrap multiaddrs are separated by commas, spaces or newlines."""
    return [p for p in re.split(r"[\s,]+", text) if p]


def read_ready(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def last_line(path: Path) -> str:
    for line in reversed(log_tail(path, 20).splitlines()):
        if line.strip():
            return line.strip()
    return ""


def terminate(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the daemon's process group, then SIGKILL after a bound."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class Start:
    """One run of the start step."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.state = Path(env["STATE_DIR"]) if env.get("STATE_DIR") else None
        self.fail_on_error = truthy(env.get("FAIL_ON_ERROR"))
        self.outputs = {"status": "degraded", "endpoint": "", "peer-id": "", "multiaddr": "",
                        "connected-peers": "0"}

    # -- outcomes ----------------------------------------------------------------------------
    def soft_fail(self, reason: str) -> int:
        """The fleet is unavailable: report, publish status degraded, keep the job going."""
        if self.state is not None:
            (self.state / "failed").write_text(reason + "\n", encoding="utf-8")
            self.write_state({"status": "degraded", "failed": reason})
            export_env({"GITHUB_P2P_STATE_DIR": str(self.state)})
        set_outputs(self.outputs)
        if self.fail_on_error:
            annotate("error", reason)
            return 1
        annotate("warning", f"{reason}; continuing without the fleet cache (direct GitHub API)")
        return 0

    def write_state(self, extra: dict[str, Any]) -> None:
        assert self.state is not None
        record = {
            "bin": self.env.get("GP_BIN", ""),
            "python": sys.executable,
            "log": str(self.state / "peer.log"),
            "ready_file": str(self.state / "ready.json"),
            "pid_file": str(self.state / "peer.pid"),
            "port": self.env.get("GP_PORT", ""),
            "http_port": self.env.get("GP_HTTP_PORT", ""),
            **extra,
        }
        (self.state / "state.json").write_text(json.dumps(record, indent=2), encoding="utf-8")

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> int:
        if self.state is None or (self.state / "failed").exists():
            # An earlier step has already reported why; just publish the degraded outputs.
            if self.state is not None:
                export_env({"GITHUB_P2P_STATE_DIR": str(self.state)})
                reason = (self.state / "failed").read_text(encoding="utf-8").strip()
                self.write_state({"status": "degraded", "failed": reason})
            set_outputs(self.outputs)
            return 0
        exe = self.env.get("GP_BIN", "")
        if not exe:
            return self.soft_fail("github-p2p is not installed")

        secret = self.env.get("GP_SECRET") or self.env.get("GITHUB_P2P_SECRET", "")
        peers = split_peers(self.env.get("GP_BOOTSTRAP_PEERS")
                            or self.env.get("MCP_P2P_BOOTSTRAP_PEERS", ""))
        if peers and not secret:
            annotate("warning", "bootstrap-peers is set but secret is empty: a fleet needs its "
                     "shared secret (GITHUB_P2P_SECRET); running local-only")
            peers = []

        ready_file = self.state / "ready.json"
        log_file = self.state / "peer.log"
        cache_dir = self.env.get("GP_CACHE_DIR") or str(self.state / "cache")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        argv = [exe, "peer",
                "--port", self.env["GP_PORT"],
                "--http-port", self.env["GP_HTTP_PORT"],
                "--cache-dir", cache_dir,
                "--ready-file", str(ready_file),
                "--max-lifetime", self.env.get("GP_MAX_LIFETIME") or "21600"]
        if self.env.get("GP_REGISTRY_ISSUE"):
            argv += ["--registry-issue", self.env["GP_REGISTRY_ISSUE"]]
        nohup = shutil.which("nohup")
        if nohup:
            argv.insert(0, nohup)

        # The venv is this job's own: let the daemon write bytecode as it imports (a job's
        # later github-p2p calls then start faster), whatever the runner's default.
        child_env = {k: v for k, v in self.env.items()
                     if not k.startswith("GP_") and k != "PYTHONDONTWRITEBYTECODE"}
        child_env.pop("GITHUB_P2P_SECRET", None)
        if secret:
            child_env["GITHUB_P2P_SECRET"] = secret
        # Explicit even when empty: the input, not a stray job variable, decides the fleet.
        child_env["MCP_P2P_BOOTSTRAP_PEERS"] = " ".join(peers)
        if self.env.get("GP_GITHUB_TOKEN"):
            child_env["GITHUB_TOKEN"] = self.env["GP_GITHUB_TOKEN"]
        if self.env.get("GP_LOG_LEVEL"):
            child_env["GITHUB_P2P_LOG_LEVEL"] = self.env["GP_LOG_LEVEL"]
        child_env["GITHUB_P2P_CACHE_DIR"] = cache_dir

        timeout = float(self.env.get("GP_STARTUP_TIMEOUT") or 60)
        print("::group::github-p2p: start the peer daemon", flush=True)
        print(f"port {self.env['GP_PORT']}, http-port {self.env['GP_HTTP_PORT']}, "
              f"{len(peers)} bootstrap peer(s), log {log_file}", flush=True)
        started = time.monotonic()
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=child_env,
                                    cwd=str(self.state), start_new_session=True)
        (self.state / "peer.pid").write_text(f"{proc.pid}\n", encoding="utf-8")

        ready: dict[str, Any] | None = None
        rc: int | None = None
        delay = 0.05
        while time.monotonic() - started < timeout:
            ready = read_ready(ready_file)
            if ready is not None:
                break
            rc = proc.poll()
            if rc is not None:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        elapsed = time.monotonic() - started
        print("::endgroup::", flush=True)

        if ready is None:
            if rc is None:
                terminate(proc)
                reason = f"the peer daemon was not ready within {timeout:g} s"
            elif rc == 2:
                detail = last_line(log_file)
                reason = "the peer daemon rejected its configuration (exit 2)" + (
                    f": {detail}" if detail else "")
            else:
                reason = f"the peer daemon exited with code {rc} during startup"
            print("::group::github-p2p: daemon log (tail)", flush=True)
            print(log_tail(log_file), flush=True)
            print("::endgroup::", flush=True)
            return self.soft_fail(reason)
        return self.publish(ready, proc.pid, elapsed, bool(peers))

    def publish(self, ready: dict[str, Any], pid: int, elapsed: float, had_peers: bool) -> int:
        assert self.state is not None
        status = str(ready.get("status", ""))
        if status not in STATUSES:
            annotate("warning", f"the daemon reported an unknown status {status!r}")
            status = "degraded"
        endpoint = str(ready.get("endpoint", ""))
        addrs = ready.get("multiaddrs") or []
        try:
            connected = int(ready.get("connected_peers", 0) or 0)
        except (TypeError, ValueError):
            connected = 0
        self.outputs.update({
            "status": status,
            "endpoint": endpoint,
            "peer-id": str(ready.get("peer_id", "")),
            "multiaddr": str(addrs[0]) if isinstance(addrs, list) and addrs else "",
            "connected-peers": str(connected),
        })
        self.write_state({"status": status, "pid": pid, "endpoint": endpoint})

        env = {"GITHUB_P2P_STATE_DIR": str(self.state),
               "GITHUB_P2P_CACHE_DIR": self.env.get("GP_CACHE_DIR") or str(self.state / "cache")}
        if endpoint:
            env["GITHUB_P2P_ENDPOINT"] = endpoint
        export_env(env)
        self.install_path()
        set_outputs(self.outputs)
        print(f"github-p2p peer {self.outputs['peer-id']} is {status} at {endpoint} "
              f"({connected} peer(s) connected, ready in {elapsed:.1f} s)", flush=True)

        if status == "local-only":
            why = ("no bootstrap peers configured" if not had_peers
                   else "the daemon found no fleet to join")
            annotate("notice", f"github-p2p is local-only ({why}): responses are cached on "
                     "this runner only. Forks and Dependabot get empty secrets.")
        elif status == "degraded":
            message = ("bootstrap peers unreachable: github-p2p serves from the local cache and "
                       "calls the GitHub API directly on a miss")
            if self.fail_on_error:
                annotate("error", message)
                return 1
            annotate("warning", message)
        return 0

    def install_path(self) -> None:
        """Put github-p2p (and the gh wrapper, when asked) on PATH for the later steps."""
        assert self.state is not None
        bin_dir = self.state / "bin"
        bin_dir.mkdir(exist_ok=True)
        if truthy(self.env.get("GP_WRAP_GH")):
            search = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                     if p and Path(p).resolve() != bin_dir.resolve())
            real_gh = shutil.which("gh", path=search)
            if real_gh is None:
                annotate("warning", "wrap-gh: gh is not installed on this runner; not wrapped")
            else:
                shim = bin_dir / "gh"
                shim.write_text(
                    "#!/bin/sh\n"
                    "# gh through the github-p2p cache (wrap-gh: true)\n"
                    f"exec {_sh_quote(self.env['GP_BIN'])} gh \"$@\"\n", encoding="utf-8")
                shim.chmod(0o755)
                export_env({"GITHUB_P2P_REAL_GH": real_gh})
                print(f"gh now runs through github-p2p (real gh: {real_gh})", flush=True)
        if any(bin_dir.iterdir()):
            _append("GITHUB_PATH", [str(bin_dir)])


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def main() -> int:
    step = Start(dict(os.environ))
    try:
        return step.run()
    except Exception as exc:  # the action must degrade, never crash the job
        return step.soft_fail(f"the start step failed unexpectedly: {exc!r}")


if __name__ == "__main__":
    sys.exit(main())
