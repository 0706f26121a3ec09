"""Benchmark: the composite action's set-up, from step start to daemon ready, cold and warm.

    .venv/bin/python -m bench.action_setup

Runs the action's own step scripts (``prepare.sh`` → ``install.sh`` → ``start.py``) the way
the runner does, with ``GITHUB_OUTPUT``/``GITHUB_ENV`` files and a fresh ``RUNNER_TEMP`` per
run. *Cold*: an empty wheelhouse (``XDG_CACHE_HOME``), so fastecdsa is compiled. *Warm*: the
wheelhouse the cold run left behind, which is what ``actions/cache`` restores. The daemon runs
local-only (no bootstrap) so only set-up is timed; it is stopped after each run.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from github_p2p.testing.localfleet import free_port

ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "scripts" / "action"


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``$GITHUB_OUTPUT`` file (``k=v`` lines and ``k<<DELIM`` blocks)."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delim = line.split("<<", 1)
            body = []
            i += 1
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            out[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def step(script: str, env: dict[str, str], log: Path) -> None:
    """Run one step script the way the composite action does."""
    args = (["bash", str(ACTION / script)] if script.endswith(".sh")
            else ["bash", str(ACTION / "run-python.sh"), script])
    with open(log, "ab") as handle:
        done = subprocess.run(args, env=env, stdout=handle, stderr=subprocess.STDOUT,
                              timeout=900)
    if done.returncode != 0:
        state = Path(env.get("STATE_DIR", "/nonexistent"))
        tails = [log.read_text(errors="replace")[-3000:]]
        tails += [p.read_text(errors="replace")[-2000:] for p in state.glob("*.log")]
        raise SystemExit(f"{script} failed ({done.returncode}):\n" + "\n---\n".join(tails))


def one_run(name: str, xdg: Path, work: Path) -> dict[str, float | str]:
    """One set-up from scratch; returns phase timings (seconds) and the final status."""
    runner_temp = work / f"runner-{name}"
    runner_temp.mkdir()
    files = {k: runner_temp / f"{k.lower()}.txt" for k in ("GITHUB_OUTPUT", "GITHUB_ENV")}
    for path in files.values():
        path.touch()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_P2P", "VIRTUAL"))}
    base["PATH"] = ":".join(p for p in base.get("PATH", "").split(":") if ".venv" not in p)
    base.update(RUNNER_TEMP=str(runner_temp), XDG_CACHE_HOME=str(xdg), RUNNER_OS="Linux",
                GITHUB_ACTION_PATH=str(ROOT), GITHUB_OUTPUT=str(files["GITHUB_OUTPUT"]),
                GITHUB_ENV=str(files["GITHUB_ENV"]), GITHUB_API_URL="http://127.0.0.1:9",
                GITHUB_REPOSITORY="octo/hello")
    log = runner_temp / "steps.log"
    started = time.perf_counter()
    port, http_port = str(free_port()), str(free_port())
    env = dict(base, GP_ARCH="X64", GP_PORT=port, GP_HTTP_PORT=http_port, GP_PYTHON="system",
               FAIL_ON_ERROR="true")
    step("prepare.sh", env, log)
    prepared = time.perf_counter()
    out = read_outputs(files["GITHUB_OUTPUT"])
    env.update(STATE_DIR=out["state-dir"], GP_INSTALL=out.get("install", "true"),
               GP_PYTHON_BIN=out["python"], GP_SOURCE=out["source"],
               GP_WHEELHOUSE=out["wheelhouse"])
    step("install.sh", env, log)
    installed = time.perf_counter()
    out = read_outputs(files["GITHUB_OUTPUT"])
    env.update(GP_BIN=out.get("bin", ""), GP_CACHE_DIR=out.get("cache-dir", ""),
               GP_HTTP_PORT=out.get("http-port", http_port), GP_PORT=out.get("port", port),
               GP_STARTUP_TIMEOUT="120", GP_MAX_LIFETIME="300", GP_LOG_LEVEL="info",
               GP_WRAP_GH="false")
    step("start.py", env, log)
    ready = time.perf_counter()
    out = read_outputs(files["GITHUB_OUTPUT"])
    step("stop.py", dict(env, GITHUB_STEP_SUMMARY=str(runner_temp / "summary.md")), log)
    return {"prepare": prepared - started, "install": installed - prepared,
            "start": ready - installed, "total": ready - started,
            "status": out.get("status", "?")}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="github-p2p-action-bench-") as tmp:
        work = Path(tmp)
        xdg = work / "xdg-cache"
        rows = [("cold", one_run("cold", xdg, work)), ("warm", one_run("warm", xdg, work))]
    print("| run | prepare s | install s | start → ready s | step start → ready s | status |")
    print("|---|---:|---:|---:|---:|---|")
    for name, r in rows:
        print(f"| {name} | {r['prepare']:.1f} | {r['install']:.1f} | {r['start']:.1f} | "
              f"{r['total']:.1f} | {r['status']} |")


if __name__ == "__main__":
    main()
