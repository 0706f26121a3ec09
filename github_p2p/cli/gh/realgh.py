"""Finding and running the real ``gh`` behind the wrapper.

The wrapper is usually installed as a ``gh`` shim first on ``PATH``, so the real ``gh`` is
``GITHUB_P2P_REAL_GH`` (the action sets it) or the first ``gh`` on ``PATH`` that is not a
github-p2p shim. Children get ``GITHUB_P2P_REAL_GH`` too, so a gh extension or alias that calls
``gh`` again goes through the wrapper without searching anew.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from github_p2p.errors import ConfigError

__all__ = ["REAL_GH_ENV", "RealGh", "find_real_gh", "is_shim"]

REAL_GH_ENV = "GITHUB_P2P_REAL_GH"
#: Every github-p2p shim mentions this; a real gh binary does not.
_SHIM_MARK = b"github-p2p"
_SHIM_MAX = 64 * 1024
_VERSION = re.compile(rb"gh version (\d+)\.(\d+)\.(\d+)")


def is_shim(path: Path) -> bool:
    """True for a small script that calls github-p2p (the action's shim, scripts/gh-shim)."""
    try:
        if path.stat().st_size > _SHIM_MAX:
            return False
        with path.open("rb") as handle:
            return _SHIM_MARK in handle.read(_SHIM_MAX)
    except OSError:
        return False


def find_real_gh(env: Mapping[str, str]) -> str:
    """The real gh; :class:`ConfigError` with a clear message when there is none."""
    explicit = env.get(REAL_GH_ENV, "").strip()
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK) and not is_shim(path):
            return str(path)
        raise ConfigError(f"{REAL_GH_ENV}={explicit} is not an executable gh")
    for directory in env.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "gh"
        if candidate.is_file() and os.access(candidate, os.X_OK) and not is_shim(candidate):
            return str(candidate)
    raise ConfigError("the real gh CLI is not installed (none on PATH besides the github-p2p "
                      f"shim): install it (https://cli.github.com) or set {REAL_GH_ENV}")


@contextlib.contextmanager
def _sigint_to_child() -> Iterator[None]:
    # Ctrl-C reaches gh through the process group; gh decides how to stop, we wait for it.
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass(frozen=True)
class RealGh:
    """The real gh at ``path``, run with ``env``."""

    path: str
    env: Mapping[str, str]

    def _child_env(self) -> dict[str, str]:
        return {**self.env, REAL_GH_ENV: self.path}

    def run(self, argv: Sequence[str], *, cwd: Path | None = None) -> int:
        """Run ``gh ARGV`` with our stdin, stdout and stderr; its exit code."""
        with _sigint_to_child():
            process = subprocess.Popen([self.path, *argv], env=self._child_env(), cwd=cwd)
            return process.wait()

    def capture(self, argv: Sequence[str], *, cwd: Path | None = None) -> tuple[int, bytes]:
        """Run ``gh ARGV`` capturing stdout (stderr stays ours); exit code and output."""
        with _sigint_to_child():
            process = subprocess.Popen([self.path, *argv], env=self._child_env(), cwd=cwd,
                                       stdout=subprocess.PIPE)
            out, _ = process.communicate()
            return process.returncode, out

    def version(self) -> tuple[int, int, int] | None:
        """``gh --version`` as a tuple; ``None`` when it cannot be told."""
        try:
            out = subprocess.run([self.path, "--version"], env=self._child_env(),
                                 capture_output=True, timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        match = _VERSION.search(out)
        if match is None:
            return None
        major, minor, patch = (int(g) for g in match.groups())
        return major, minor, patch
