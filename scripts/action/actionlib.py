"""What the action's entry scripts share: workflow commands, the runner's files, the state
directory, and the one way a step degrades.

The scripts run with whatever Python the runner has, before (or without) github-p2p installed,
so this module uses the standard library only. The action must never break a job because the
fleet is unavailable: a problem becomes a ``::warning::`` and a ``failed`` reason in the state,
which later steps read to skip their work and report status ``degraded``. Only
``fail-on-error: true`` turns it into a failed step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["ACTION_ROOT", "State", "annotate", "append_lines", "export_env", "load_ports",
           "mask", "pid_alive", "set_outputs", "split_peers", "truthy"]

#: The action's checkout ($GITHUB_ACTION_PATH): scripts/action/ is two levels below it.
ACTION_ROOT = Path(__file__).resolve().parents[2]


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(kind: str, message: str) -> None:
    """Print a workflow command: ``notice``, ``warning`` or ``error``, titled github-p2p."""
    print(f"::{kind} title=github-p2p::{_escape(message)}", flush=True)


def mask(value: str) -> None:
    """Ask the runner to hide ``value`` in the log from now on (each line on its own)."""
    for line in value.splitlines():
        if line.strip():
            print(f"::add-mask::{line}", flush=True)


def truthy(value: str | None, default: bool = False) -> bool:
    """An action input as a boolean; empty means ``default``."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("true", "yes", "1", "on")


def split_peers(text: str) -> list[str]:
    """Bootstrap multiaddrs are separated by commas, spaces or newlines."""
    return [p for p in re.split(r"[\s,]+", text or "") if p]


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def append_lines(var: str, lines: list[str]) -> None:
    """Append to one of the runner's files ($GITHUB_OUTPUT, $GITHUB_ENV, $GITHUB_PATH)."""
    for line in lines:
        if "\n" in line or "\r" in line:
            raise ValueError(f"refusing to write a multi-line value to {var}")
    target = os.environ.get(var)
    if not target:  # outside a runner: show what would have been written
        for line in lines:
            print(f"{var}: {line}", flush=True)
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def set_outputs(outputs: dict[str, str]) -> None:
    """Step outputs (single-line values)."""
    append_lines("GITHUB_OUTPUT", [f"{k}={v}" for k, v in outputs.items()])


def export_env(values: dict[str, str]) -> None:
    """Environment variables for the job's later steps."""
    append_lines("GITHUB_ENV", [f"{k}={v}" for k, v in values.items()])


def load_ports() -> ModuleType:
    """``github_p2p/core/ports.py`` of this checkout, loaded by path: the one home of the port
    rules, usable before github-p2p is installed (it imports nothing of the package)."""
    path = ACTION_ROOT / "github_p2p" / "core" / "ports.py"
    spec = importlib.util.spec_from_file_location("github_p2p_action_ports", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class State:
    """``state.json`` in the per-port state directory: what one step tells the next ones and
    the end-of-job step (pid, log, endpoint, status, why it degraded, timings)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.file = self.dir / "state.json"

    def read(self) -> dict[str, Any]:
        """The state so far ({} when there is none)."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **values: Any) -> dict[str, Any]:
        """Merge ``values`` in, atomically (a reader never sees half a file)."""
        data = {**self.read(), **values}
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".state.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.file)
        return data

    def fail(self, reason: str, fail_on_error: bool) -> int:
        """Record why the fleet is unavailable and report it; the step's exit code."""
        self.update(status="degraded", failed=reason)
        return report_failure(reason, fail_on_error)

    def seconds_since_start(self) -> float | None:
        """Seconds since the first step of the action began (its ``step_started`` time)."""
        started = self.read().get("step_started")
        return time.time() - float(started) if isinstance(started, (int, float)) else None


def report_failure(reason: str, fail_on_error: bool) -> int:
    """A ``::warning::`` (the job goes on) or, with fail-on-error, an ``::error::``."""
    if fail_on_error:
        annotate("error", reason)
        return 1
    annotate("warning", f"{reason}; continuing without the fleet cache (direct GitHub API)")
    return 0
