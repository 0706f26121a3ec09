"""Benchmark: the composite action's set-up, from step start to daemon ready, cold and warm.

    .venv/bin/python -m bench.action_setup [--before DIR] [--runs N]

Runs the action's own step scripts the way the runner does (``GITHUB_OUTPUT``/``GITHUB_ENV``
files, a fresh ``RUNNER_TEMP`` per run), with the daemon local-only (``wrap-gh: true``, so it
is started with no fleet), and stops it after each run.

* *cold*: nothing cached: an empty tool cache and an empty uv cache, so every package is
  downloaded and fastecdsa is compiled (GMP's headers are on this machine).
* *warm*: what ``actions/cache`` restores: the cold run's cached directory is archived after the
  job (GNU tar through zstd, as actions/cache stores it), removed, and unpacked again between
  the prepare step and the start step; the unpacking is timed as "restore" and counted in the
  total (the download from the cache service is not: it depends on GitHub's network).

``--before DIR`` runs the same measurement, in the same run, on an older checkout of the action
(``git worktree add DIR <commit>``) whose steps were ``prepare.sh`` → ``install.sh`` →
``start.py`` with a wheelhouse cache, and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from github_p2p.testing.localfleet import free_port

ROOT = Path(__file__).resolve().parent.parent


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


class Job:
    """One simulated job: its runner files and environment, and its step runner."""

    def __init__(self, action: Path, work: Path, name: str, caches: dict[str, Path]) -> None:
        self.action = action
        self.temp = work / f"runner-{name}"
        self.temp.mkdir()
        self.files = {k: self.temp / f"{k.lower()}.txt"
                      for k in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE",
                                "GITHUB_STEP_SUMMARY")}
        for path in self.files.values():
            path.touch()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("GITHUB_P2P", "VIRTUAL", "UV_"))}
        base["PATH"] = ":".join(p for p in base.get("PATH", "").split(":") if ".venv" not in p)
        base.update({k: str(v) for k, v in self.files.items()})
        base.update(RUNNER_TEMP=str(self.temp), RUNNER_OS="Linux", GITHUB_ACTION_PATH=str(action),
                    RUNNER_TOOL_CACHE=str(caches["tool"]), XDG_CACHE_HOME=str(caches["xdg"]),
                    UV_CACHE_DIR=str(caches["uv"]), GITHUB_API_URL="http://127.0.0.1:9",
                    GITHUB_REPOSITORY="octo/hello")
        self.env = base
        self.log = self.temp / "steps.log"

    def step(self, argv: list[str], **env: str) -> dict[str, str]:
        """Run one step; returns the outputs so far."""
        with open(self.log, "ab") as handle:
            done = subprocess.run(argv, env={**self.env, **env}, stdout=handle,
                                  stderr=subprocess.STDOUT, timeout=900, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{argv} failed ({done.returncode}):\n"
                             + self.log.read_text(errors="replace")[-4000:])
        return read_outputs(self.files["GITHUB_OUTPUT"])

    def script(self, name: str, **env: str) -> dict[str, str]:
        folder = self.action / "scripts" / "action"
        if name.endswith(".sh"):
            return self.step(["bash", str(folder / name)], **env)
        return self.step(["bash", str(folder / "run-python.sh"), name], **env)


def rss_mib(pid_source: Path) -> float:
    """Resident memory of the daemon whose pid is in ``pid_source`` (a pid file, or state.json)."""
    text = pid_source.read_text()
    pid = json.loads(text)["pid"] if pid_source.suffix == ".json" else int(text.strip())
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def current_layout(job: Job, python: str, restore: Callable[[], float]) -> dict[str, float]:
    """This checkout's steps: prepare.py → (actions/cache restore) → start.py."""
    common = {"GP_ARCH": "X64", "GP_PORT": str(free_port()), "GP_HTTP_PORT": str(free_port()),
              "GP_WRAP_GH": "true", "FAIL_ON_ERROR": "true"}
    out: dict[str, str] = {}
    started = time.perf_counter()
    prepare = timed(lambda: out.update(job.script("prepare.py", GP_PYTHON=python, **common)))
    restored = restore()
    start = timed(lambda: job.script(
        "start.py", STATE_DIR=out["state-dir"], GP_PYTHON_BIN=out["python"],
        GP_STARTUP_TIMEOUT="120", GP_MAX_LIFETIME="300", GP_LOG_LEVEL="info", **common))
    total = time.perf_counter() - started
    rss = rss_mib(Path(out["state-dir"]) / "state.json")
    job.script("stop.py", GP_STATE_DIR=out["state-dir"], GP_WHEN="job-end")
    return {"prepare": prepare, "restore": restored, "start": start, "total": total, "rss": rss}


def legacy_layout(job: Job, python: str, restore: Callable[[], float]) -> dict[str, float]:
    """The older steps: prepare.sh → (restore the wheelhouse) → install.sh → start.py."""
    common = {"GP_ARCH": "X64", "GP_PORT": str(free_port()), "GP_HTTP_PORT": str(free_port()),
              "FAIL_ON_ERROR": "true"}
    out: dict[str, str] = {}
    started = time.perf_counter()
    prepare = timed(lambda: out.update(job.script("prepare.sh", GP_PYTHON=python, **common)))
    restored = restore()
    env = dict(common, STATE_DIR=out["state-dir"], GP_INSTALL=out.get("install", "true"),
               GP_PYTHON_BIN=out["python"], GP_SOURCE=out["source"],
               GP_WHEELHOUSE=out["wheelhouse"], GP_HTTP_PORT=out["http-port"],
               GP_PORT=out["port"])
    install = timed(lambda: out.update(job.script("install.sh", **env)))
    start = timed(lambda: job.script(
        "start.py", **env, GP_BIN=out.get("bin", ""), GP_CACHE_DIR=out.get("cache-dir", ""),
        GP_STARTUP_TIMEOUT="120", GP_MAX_LIFETIME="300", GP_LOG_LEVEL="info",
        GP_WRAP_GH="false"))
    total = time.perf_counter() - started
    state = Path(out["state-dir"])
    rss = rss_mib(state / "peer.pid")
    job.script("stop.py", GITHUB_P2P_STATE_DIR=str(state))
    return {"prepare": prepare, "restore": restored, "start": install + start, "total": total,
            "rss": rss}


def measure(action: Path, python: str, work: Path) -> dict[str, dict[str, float]]:
    """Cold then warm set-up of one checkout of the action."""
    caches = {name: work / name for name in ("tool", "xdg", "uv")}
    for path in caches.values():
        path.mkdir()
    legacy = (action / "scripts" / "action" / "install.sh").exists()
    layout = legacy_layout if legacy else current_layout
    # What actions/cache keeps: the whole environment now, the wheelhouse before.
    kept = caches["xdg"] / "github-p2p" if legacy else caches["tool"] / "github-p2p"
    cold = layout(Job(action, work, "cold", caches), python, lambda: 0.0)
    archive = work / "cache.tzst"
    # As actions/cache stores it: GNU tar through zstd (tarfile, uncompressed, without them).
    zstd = shutil.which("tar") and shutil.which("zstd")
    if zstd:
        subprocess.run(["tar", "--posix", "--use-compress-program", "zstd -T0 --long=30",
                        "-cf", str(archive), "-C", str(kept.parent), kept.name], check=True)
    else:
        with tarfile.open(archive, "w") as tar:
            tar.add(kept, arcname=kept.name)
    shutil.rmtree(kept)
    shutil.rmtree(caches["uv"])  # a new runner: nothing else survives
    caches["uv"].mkdir()

    def restore() -> float:
        def unpack() -> None:
            if zstd:
                subprocess.run(["tar", "--use-compress-program", "zstd -d --long=30", "-xf",
                                str(archive), "-C", str(kept.parent)], check=True)
            else:
                with tarfile.open(archive) as tar:
                    tar.extractall(kept.parent, filter="tar")
        return timed(unpack)

    warm = layout(Job(action, work, "warm", caches), python, restore)
    return {"cold": cold, "warm": warm}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--before", type=Path, help="an older checkout of the action")
    parser.add_argument("--runs", type=int, default=1, help="repetitions (medians shown)")
    parser.add_argument("--python", default=os.path.realpath(shutil.which("python3") or ""),
                        help="the interpreter input (default: python3's real path)")
    args = parser.parse_args()
    checkouts = [("before", args.before.resolve())] if args.before else []
    checkouts.append(("now", ROOT))
    results: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name, _ in checkouts}
    load = os.getloadavg()
    for _ in range(args.runs):
        for name, path in checkouts:
            for attempt in range(3):
                # Free ports are picked, then bound by the daemon: on a machine shared with
                # other suites one may be taken in between. Such a run is redone, not counted.
                with tempfile.TemporaryDirectory(prefix="github-p2p-action-bench-") as tmp:
                    try:
                        results[name].append(measure(path, args.python, Path(tmp)))
                        break
                    except SystemExit as exc:
                        if attempt == 2 or "Address already in use" not in str(exc):
                            raise
                        print(f"{name}: a port was taken meanwhile; measuring again")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f"; runs: {args.runs}")
    print("| checkout | run | prepare s | restore s | install + start → ready s | "
          "step start → ready s | daemon RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, path in checkouts:
        for kind in ("cold", "warm"):
            rows = [r[kind] for r in results[name]]
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            label = f"{name} ({path.name})"
            print(f"| {label} | {kind} | {med['prepare']:.2f} | {med['restore']:.2f} | "
                  f"{med['start']:.2f} | **{med['total']:.2f}** | {med['rss']:.0f} |")


if __name__ == "__main__":
    main()
