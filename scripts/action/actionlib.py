"""What the action's Python entry scripts share: workflow commands, flags, process checks.

The scripts run with whatever Python the runner has (3.8+), before or without github-p2p
installed, so this module uses the standard library only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["annotate", "pid_alive", "truthy"]


def _escape(message: str) -> str:
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotate(kind: str, message: str) -> None:
    """Print a workflow command (::notice::, ::warning::, ::error::)."""
    print(f"::{kind} title=github-p2p::{_escape(message)}", flush=True)


def truthy(value: str | None, default: bool = False) -> bool:
    """An action input as a boolean; empty means ``default``."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("true", "yes", "1", "on")


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
