#!/usr/bin/env python3
"""Step 1 of the composite action: mask the secrets, decide whether anything would use a
daemon, resolve the port, the state directory and the Python, and name the cached environment
(the ``actions/cache`` step that follows restores it).

Environment (the action's inputs): GP_SECRET, GP_BOOTSTRAP_PEERS, GP_PORT, GP_HTTP_PORT,
GP_CACHE_DIR, GP_PYTHON, GP_INSTALL_SOURCE, GP_ARCH (runner.arch), GP_WRAP_GH, GP_MCP,
GP_REGISTRY_ISSUE, FAIL_ON_ERROR.
Outputs: state-dir, port, python, install (lock, spec, preinstalled or skip), venv, cache-key,
restore (true when the cache step should run).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from actionlib import (
    ACTION_ROOT,
    State,
    annotate,
    load_ports,
    mask,
    pid_alive,
    report_failure,
    set_outputs,
    split_peers,
    truthy,
)
from environment import Interpreter, cache_root, environment_key, is_ready, source_hash

MIN_PYTHON = (3, 10)


def find_python(want: str, arch: str, env: dict[str, str]) -> str | None:
    """An interpreter for ``want``: "3.X" (runner tool cache, then PATH), "system", or a path."""
    if want in ("", "system"):
        return shutil.which("python3") or shutil.which("python")
    if "/" in want:
        return want if os.access(want, os.X_OK) else None
    if not re.fullmatch(r"3\.\d+", want):
        return None
    tool_cache = env.get("RUNNER_TOOL_CACHE")
    if tool_cache:
        # The hosted images keep several Pythons in the tool cache (setup-python's layout):
        # using them directly avoids a nested remote action.
        found = sorted(Path(tool_cache, "Python").glob(f"{want}.*/{arch.lower()}/bin/python3"),
                       key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-4])])
        if found:
            return str(found[-1])
    candidate = shutil.which(f"python{want}")
    return candidate if candidate and _minor(candidate) == want else None


def _minor(python: str) -> str | None:
    try:
        return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


class Prepare:
    """One run of the prepare step."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.fail_on_error = truthy(env.get("FAIL_ON_ERROR"))
        self.outputs = {"state-dir": "", "port": "", "python": "", "install": "skip",
                        "venv": "", "cache-key": "", "restore": "false"}

    def fail(self, state: State | None, reason: str) -> int:
        if state is not None:
            state.update(status="degraded", failed=reason)
        set_outputs(self.outputs)
        return report_failure(reason, self.fail_on_error)

    def run(self) -> int:
        started = time.time()
        env = self.env
        # Mask first, before anything can echo them. Secrets passed from `secrets.*` are masked
        # by the runner already; a value that came from a variable or a literal is not.
        mask(env.get("GP_SECRET", ""))
        for peer in split_peers(env.get("GP_BOOTSTRAP_PEERS", "")):
            mask(peer)

        ports = load_ports()
        arch = env.get("GP_ARCH", "")
        port_text = env.get("GP_PORT", "").strip() or str(ports.default_port(arch))
        port = int(port_text) if port_text.isdigit() else 0
        state_name = str(port) if 1 <= port <= 65535 else "invalid"
        temp = env.get("RUNNER_TEMP") or os.environ.get("TMPDIR") or "/tmp"
        state = State(Path(temp) / f"github-p2p-{state_name}")

        # One daemon per port per job: a live pid here means the action already ran on it.
        old = state.read().get("pid")
        if isinstance(old, int) and pid_alive(old):
            return self.fail(None, f"a github-p2p daemon of this job already runs on port "
                             f"{port_text} (pid {old}); run the stop action first or choose "
                             "another port")
        shutil.rmtree(state.dir, ignore_errors=True)
        state.update(step_started=started, status="starting")
        self.outputs["state-dir"] = str(state.dir)

        if state_name == "invalid":
            return self.fail(state, f"input port is not a TCP port: '{port_text}'")
        http_port = env.get("GP_HTTP_PORT", "").strip()
        if http_port and not (http_port.isdigit() and 1 <= int(http_port) <= 65535):
            return self.fail(state, f"input http-port is not a TCP port: '{http_port}'")
        if http_port == str(port):
            return self.fail(state, f"port and http-port must differ (both {port})")
        self.outputs["port"] = str(port)

        why_off = self.nothing_would_use_it()
        if why_off:
            state.update(status="off", reason=why_off)
            annotate("notice", f"github-p2p is off: {why_off}. Installed nothing; steps call "
                     "the GitHub API directly (GITHUB_P2P_ENDPOINT is not set).")
            set_outputs(self.outputs)
            return 0

        want = env.get("GP_PYTHON", "").strip() or "3.11"
        python = find_python(want, arch or "x64", env)
        if python is None:
            python = find_python("system", arch, env)
            if python is None:
                return self.fail(state, f"no Python interpreter found (python: '{want}')")
            print(f"Python '{want}' not found; using {python}", flush=True)
        try:
            interpreter = Interpreter.probe(python)
        except (OSError, subprocess.SubprocessError, IndexError):
            return self.fail(state, f"Python interpreter {python} does not run")
        if tuple(int(x) for x in interpreter.version.split(".")[:2]) < MIN_PYTHON:
            return self.fail(state, f"github-p2p needs Python >= 3.10, found "
                             f"{interpreter.version} at {python} (set input python)")
        self.outputs["python"] = python
        state.update(python=python, python_version=interpreter.version)
        return self.plan_install(state, interpreter)

    def nothing_would_use_it(self) -> str:
        """Why no daemon is needed, or "" when something would use one."""
        env = self.env
        secret = env.get("GP_SECRET", "").strip()
        peers = split_peers(env.get("GP_BOOTSTRAP_PEERS", ""))
        registry = env.get("GP_REGISTRY_ISSUE", "").strip()
        if secret and (peers or registry):
            return ""
        if truthy(env.get("GP_WRAP_GH")) or truthy(env.get("GP_MCP")):
            return ""  # a local-only daemon still serves the gh wrapper or MCP
        if peers and not secret:
            annotate("warning", "bootstrap-peers is set but secret is empty: a fleet needs its "
                     "shared secret (pass secrets.MCP_P2P_SECRET as secret)")
            return "bootstrap-peers is set without a secret, so there is no fleet to join"
        if secret:
            return "a secret but no bootstrap-peers or registry-issue: there is no fleet to join"
        return ("no fleet is configured (bootstrap-peers and secret are empty, as for pull "
                "requests from forks and Dependabot) and wrap-gh and mcp are off")

    def plan_install(self, state: State, interpreter: Interpreter) -> int:
        source_input = self.env.get("GP_INSTALL_SOURCE", "").strip()
        extras = ("fleet", "mcp") if truthy(self.env.get("GP_MCP")) else ("fleet",)
        if source_input == "preinstalled":
            if shutil.which("github-p2p") is None:
                return self.fail(state, "install-source is 'preinstalled' but github-p2p is "
                                 "not on PATH")
            self.outputs["install"] = "preinstalled"
            state.update(install="preinstalled")
            set_outputs(self.outputs)
            return 0
        source = Path(source_input) if source_input else ACTION_ROOT
        if source.is_dir() and (source / "uv.lock").is_file():
            lock_hash = hashlib.sha256((source / "uv.lock").read_bytes()).hexdigest()
            content = source_hash(source)
            kind, spec = "lock", ""
        elif source.is_dir():
            return self.fail(state, f"install-source {source} has no uv.lock")
        else:
            lock_hash = content = hashlib.sha256(source_input.encode()).hexdigest()
            kind, spec = "spec", source_input
        key = environment_key(runner_os=self.env.get("RUNNER_OS", "Linux"),
                              arch=self.env.get("GP_ARCH", ""), interpreter=interpreter,
                              extras=extras, lock_hash=lock_hash, content_hash=content)
        venv = cache_root(self.env) / key
        ready = is_ready(venv, key)
        self.outputs.update({"install": kind, "venv": str(venv), "cache-key": key,
                             # Already here (a self-hosted runner's tool cache): no restore,
                             # and so no save at the end of the job either.
                             "restore": "false" if ready else "true"})
        state.update(install=kind, venv=str(venv), key=key, extras=list(extras),
                     source=str(source) if kind == "lock" else "", spec=spec,
                     venv_was_there=ready)
        print(f"github-p2p: port {self.outputs['port']}, Python {interpreter.version}, "
              f"environment {key} ({'present' if ready else 'to restore or build'})",
              flush=True)
        set_outputs(self.outputs)
        return 0


def main() -> int:
    step = Prepare(dict(os.environ))
    try:
        return step.run()
    except Exception as exc:  # the action must degrade, never crash the job
        return step.fail(None, f"the prepare step failed unexpectedly: {exc!r}")


if __name__ == "__main__":
    sys.exit(main())
