#!/usr/bin/env python3
"""Step 2 of the composite action: make sure the environment is there (restored by
``actions/cache``, already present, or built now), start ``github-p2p peer`` detached, and
publish its state.

The daemon runs in its own session under nohup, with its output in a log file (an inherited
pipe would hold the step open). Once its ready file appears (bounded wait) this step sets the
action's outputs, exports ``GITHUB_P2P_ENDPOINT`` (and ``GITHUB_P2P_MCP_URL`` with ``mcp``) and
reports the status: ``local-only`` as a notice, ``degraded`` as a warning. A daemon that does
not start is a warning too, and the job goes on against the GitHub API directly; only
``fail-on-error: true`` turns it into a failure.

Environment (inputs and the prepare step's outputs): STATE_DIR, GP_INSTALL, GP_VENV,
GP_CACHE_KEY, GP_HTTP_PORT, GP_CACHE_DIR, GP_SECRET, GP_BOOTSTRAP_PEERS, GP_GITHUB_TOKEN,
GP_REGISTRY_ISSUE, GP_LOG_LEVEL, GP_MAX_LIFETIME, GP_STARTUP_TIMEOUT, GP_WRAP_GH, GP_MCP,
FAIL_ON_ERROR. Standard library only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from actionlib import (
    State,
    annotate,
    append_lines,
    export_env,
    report_failure,
    set_outputs,
    split_peers,
    truthy,
)
from environment import build, is_ready

STATUSES = ("active", "degraded", "local-only")
LOG_TAIL_LINES = 40
#: Where the daemon serves MCP (Streamable HTTP) under its endpoint: DAEMON_MCP_PATH of
#: github_p2p/nodes/mcpmount.py (which this script cannot import; a test holds them equal).
MCP_PATH = "/_p2p/mcp"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def print_group(title: str, body: str) -> None:
    print(f"::group::github-p2p: {title}\n{body}\n::endgroup::", flush=True)


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
        self.state = State(env["STATE_DIR"]) if env.get("STATE_DIR") else None
        self.fail_on_error = truthy(env.get("FAIL_ON_ERROR"))
        self.outputs = {"status": "degraded", "endpoint": "", "peer-id": "", "multiaddr": "",
                        "connected-peers": "0", "mcp-url": ""}

    def soft_fail(self, reason: str) -> int:
        """The fleet is unavailable: report, publish status degraded, keep the job going."""
        set_outputs(self.outputs)
        if self.state is None:
            return report_failure(reason, self.fail_on_error)
        export_env({"GITHUB_P2P_STATE_DIR": str(self.state.dir)})
        return self.state.fail(reason, self.fail_on_error)

    def run(self) -> int:
        if self.state is None:
            set_outputs(self.outputs)  # prepare reported why already
            return 0
        data = self.state.read()
        export_env({"GITHUB_P2P_STATE_DIR": str(self.state.dir)})
        if data.get("failed"):
            set_outputs(self.outputs)  # an earlier step has already reported why
            return 0
        if data.get("status") == "off":
            self.outputs["status"] = "off"
            set_outputs(self.outputs)
            return 0
        exe = self.environment(data)
        if exe is None:
            return 1 if self.fail_on_error else 0
        return self.start_daemon(exe)

    # -- the environment ---------------------------------------------------------------------
    def environment(self, data: dict[str, Any]) -> str | None:
        """The github-p2p executable: restored, present, built now, or preinstalled."""
        assert self.state is not None
        began = time.monotonic()
        if data.get("install") == "preinstalled":
            exe = shutil.which("github-p2p")
            if exe is None:
                self.soft_fail("github-p2p is not on PATH (install-source: preinstalled)")
                return None
            self.state.update(environment="preinstalled", install_seconds=0.0, bin=exe)
            return exe
        venv, key = Path(str(data.get("venv", ""))), str(data.get("key", ""))
        if is_ready(venv, key):
            how = "present" if data.get("venv_was_there") else "restored"
        else:
            how = "built"
            log_path = self.state.dir / "install.log"
            print(f"::group::github-p2p: build the environment ({venv.name})", flush=True)
            try:
                with open(log_path, "a", encoding="utf-8") as log:
                    marker = build(venv=venv, key=key, python=self.env.get("GP_PYTHON_BIN", ""),
                                   source=Path(data["source"]) if data.get("source") else None,
                                   spec=str(data.get("spec") or "") or None,
                                   extras=tuple(data.get("extras") or ("fleet",)), log=log)
            except Exception as exc:  # network, compiler, disk: the job goes on without us
                why = (f"{Path(str(exc.cmd[0])).name} {exc.cmd[1]} exited with {exc.returncode}"
                       if isinstance(exc, subprocess.CalledProcessError) else str(exc))
                print(f"::endgroup::\n{log_tail(log_path)}", flush=True)
                self.soft_fail(f"could not install github-p2p ({why}; see the log above)")
                return None
            print(f"built in {marker['seconds']:.1f} s\n::endgroup::", flush=True)
        exe = str(venv / "bin" / "github-p2p")
        self.state.update(environment=how, install_seconds=round(time.monotonic() - began, 2),
                          bin=exe)
        return exe

    # -- the daemon --------------------------------------------------------------------------
    def start_daemon(self, exe: str) -> int:
        assert self.state is not None
        env = self.env
        secret = env.get("GP_SECRET", "")
        peers = split_peers(env.get("GP_BOOTSTRAP_PEERS", ""))
        if peers and not secret:
            peers = []  # prepare warned: without the secret there is no fleet to join
        state_dir = self.state.dir
        ready_file, log_file = state_dir / "ready.json", state_dir / "peer.log"
        cache_dir = env.get("GP_CACHE_DIR") or str(state_dir / "cache")
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        argv = [exe, "peer", "--port", env.get("GP_PORT", ""), "--cache-dir", cache_dir,
                "--ready-file", str(ready_file),
                "--max-lifetime", env.get("GP_MAX_LIFETIME") or "21600"]
        if env.get("GP_HTTP_PORT"):  # else the daemon's own rule: port - 300
            argv += ["--http-port", env["GP_HTTP_PORT"]]
        if env.get("GP_REGISTRY_ISSUE"):
            argv += ["--registry-issue", env["GP_REGISTRY_ISSUE"]]
        nohup = shutil.which("nohup")
        if nohup:
            argv.insert(0, nohup)

        child_env = {k: v for k, v in env.items() if not k.startswith(("GP_", "STATE_DIR"))}
        if self.state.read().get("environment") == "built":
            # A new environment: the daemon writes the bytecode of what it imports, whatever
            # the runner's default, so the cached copy imports without compiling.
            child_env.pop("PYTHONDONTWRITEBYTECODE", None)
        child_env.pop("GITHUB_P2P_SECRET", None)
        if secret:
            child_env["GITHUB_P2P_SECRET"] = secret
        # Explicit even when empty: the input, not a stray job variable, decides the fleet.
        child_env["MCP_P2P_BOOTSTRAP_PEERS"] = " ".join(peers)
        if env.get("GP_GITHUB_TOKEN"):
            child_env["GITHUB_TOKEN"] = env["GP_GITHUB_TOKEN"]
        if env.get("GP_LOG_LEVEL"):
            child_env["GITHUB_P2P_LOG_LEVEL"] = env["GP_LOG_LEVEL"]
        child_env["GITHUB_P2P_CACHE_DIR"] = cache_dir

        timeout = float(env.get("GP_STARTUP_TIMEOUT") or 60)
        print(f"::group::github-p2p: start the peer daemon\nport {env.get('GP_PORT')}, "
              f"{len(peers)} bootstrap peer(s), log {log_file}", flush=True)
        started = time.monotonic()
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=child_env,
                                    cwd=str(state_dir), start_new_session=True)
        self.state.update(pid=proc.pid, log=str(log_file), cache_dir=cache_dir)
        ready: dict[str, Any] | None = None
        rc: int | None = None
        delay = 0.02
        while time.monotonic() - started < timeout:
            ready = _read_json(ready_file)
            rc = proc.poll()
            if ready is not None or rc is not None:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        print("::endgroup::", flush=True)
        if ready is None:
            if rc is None:
                terminate(proc)
                reason = f"the peer daemon was not ready within {timeout:g} s"
            elif rc == 2:
                detail = next((line.strip() for line in reversed(log_tail(log_file).splitlines())
                               if line.strip()), "")
                reason = "the peer daemon rejected its configuration (exit 2)" + (
                    f": {detail}" if detail else "")
            else:
                reason = f"the peer daemon exited with code {rc} during startup"
            print_group("daemon log (tail)", log_tail(log_file))
            return self.soft_fail(reason)
        return self.publish(ready, exe, bool(peers))

    def publish(self, ready: dict[str, Any], exe: str, had_peers: bool) -> int:
        assert self.state is not None
        status = str(ready.get("status", ""))
        if status not in STATUSES:
            annotate("warning", f"the daemon reported an unknown status {status!r}")
            status = "degraded"
        endpoint = str(ready.get("endpoint", "") or "")
        addrs = ready.get("multiaddrs") or []
        try:
            connected = int(ready.get("connected_peers", 0) or 0)
        except (TypeError, ValueError):
            connected = 0
        mcp_url = endpoint + MCP_PATH if endpoint and truthy(self.env.get("GP_MCP")) else ""
        self.outputs.update({
            "status": status, "endpoint": endpoint, "peer-id": str(ready.get("peer_id", "")),
            "multiaddr": str(addrs[0]) if isinstance(addrs, list) and addrs else "",
            "connected-peers": str(connected), "mcp-url": mcp_url,
        })
        setup = self.state.seconds_since_start()
        self.state.update(status=status, endpoint=endpoint, mcp_url=mcp_url,
                          setup_seconds=round(setup, 2) if setup is not None else None)
        env = {"GITHUB_P2P_CACHE_DIR": str(self.state.read().get("cache_dir", ""))}
        if endpoint:
            env["GITHUB_P2P_ENDPOINT"] = endpoint
        if mcp_url:
            env["GITHUB_P2P_MCP_URL"] = mcp_url
        export_env(env)
        self.install_path(exe)
        set_outputs(self.outputs)
        how = self.state.read().get("environment", "")
        print(f"github-p2p peer {self.outputs['peer-id']} is {status} at {endpoint} "
              f"({connected} peer(s) connected; set up in {setup or 0:.1f} s, environment "
              f"{how})", flush=True)

        if status == "local-only":
            why = ("no fleet configured" if not had_peers
                   else "the daemon found no fleet to join")
            annotate("notice", f"github-p2p is local-only ({why}): responses are cached on "
                     "this runner only.")
        elif status == "degraded":
            message = ("bootstrap peers unreachable: github-p2p serves from the local cache and "
                       "calls the GitHub API directly on a miss")
            if self.fail_on_error:
                annotate("error", message)
                return 1
            annotate("warning", message)
        return 0

    def install_path(self, exe: str) -> None:
        """Put github-p2p (and the gh wrapper, when asked) on PATH for the later steps; not
        the environment's python: later steps keep their own."""
        assert self.state is not None
        bin_dir = self.state.dir / "bin"
        bin_dir.mkdir(exist_ok=True)
        link = bin_dir / "github-p2p"
        if Path(exe).resolve() != link.resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(exe)
        if truthy(self.env.get("GP_WRAP_GH")):
            search = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                     if p and Path(p).resolve() != bin_dir.resolve())
            real_gh = shutil.which("gh", path=search)
            if real_gh is None:
                annotate("warning", "wrap-gh: gh is not installed on this runner; not wrapped")
            else:
                shim = bin_dir / "gh"
                shim.write_text("#!/bin/sh\n# gh through the github-p2p cache (wrap-gh: true)\n"
                                f"exec {_sh_quote(exe)} gh \"$@\"\n", encoding="utf-8")
                shim.chmod(0o755)
                export_env({"GITHUB_P2P_REAL_GH": real_gh})
                print(f"gh now runs through github-p2p (real gh: {real_gh})", flush=True)
        append_lines("GITHUB_PATH", [str(bin_dir)])


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
