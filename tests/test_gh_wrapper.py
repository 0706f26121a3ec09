"""``github-p2p gh`` against the simulator over HTTPS (as gh requires), with a stand-in gh that
records its arguments, and, where the Debian ``gh`` package is installed, the real gh.

gh talks to a non-github.com host at ``https://HOST/api/v3/`` with ``GH_ENTERPRISE_TOKEN``; the
simulator serves that prefix. Upstream counts come from the simulator's records.
"""

from __future__ import annotations

import io
import os
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from gh_support import REAL_GH, gh_environment

from github_p2p.cli.gh import GhWrapper
from github_p2p.errors import ConfigError
from github_p2p.testing.simulator import GitHubSimulator

REPO = "octo/hello"
TOKEN = "ghp_wrappertoken01"
ROOT = Path(__file__).resolve().parents[1]
FAKE_GH = """#!/usr/bin/env bash
# Stands in for gh: logs its arguments, prints a result that changes with every run.
printf '%s\\n' "$*" >> "$FAKE_GH_LOG"
case "$1" in
  pr|run|repo) printf '[{"run":%s}]\\n' "$(wc -l < "$FAKE_GH_LOG")" ;;
esac
exit "${FAKE_GH_EXIT:-0}"
"""


@pytest.fixture
def env(https_sim: GitHubSimulator, tls: tuple[Path, ssl.SSLContext], tmp_path: Path
        ) -> dict[str, str]:
    """The environment of a job step: gh pointed at the simulator, a fake gh installed."""
    fake_dir = tmp_path / "fake-bin"
    fake_dir.mkdir()
    (fake_dir / "gh").write_text(FAKE_GH)
    (fake_dir / "gh").chmod(0o755)
    env = gh_environment(https_sim, tls[0], tmp_path, TOKEN)
    env["PATH"] = f"{fake_dir}{os.pathsep}{env['PATH']}"
    env["FAKE_GH_LOG"] = str(tmp_path / "fake-gh.log")
    return env


class Run:
    """One wrapper invocation's outcome."""

    def __init__(self, code: int, out: bytes, err: str) -> None:
        self.code, self.out, self.err = code, out, err


def gh(env: dict[str, str], *argv: str, clock: object = None) -> Run:
    out, err = io.BytesIO(), io.StringIO()
    kwargs = {"clock": clock} if clock is not None else {}
    code = GhWrapper(env, stdout=out, stderr=err, **kwargs).run(list(argv))  # type: ignore[arg-type]
    return Run(code, out.getvalue(), err.getvalue())


def fake_runs(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_GH_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def upstream(sim: GitHubSimulator, method: str = "GET") -> list[str]:
    return [r.path for r in sim.records() if r.method == method]


def test_the_same_gh_api_call_twice_costs_one_upstream_call(
        https_sim: GitHubSimulator, env: dict[str, str]) -> None:
    first = gh(env, "api", f"repos/{REPO}")
    second = gh(env, "api", f"/repos/{REPO}")
    assert first.code == second.code == 0 and first.out == second.out
    assert first.out.startswith(b'{"id":') and b'"full_name":"octo/hello"' in first.out
    assert upstream(https_sim) == [f"/repos/{REPO}"]
    assert fake_runs(env) == []  # served without gh


def test_paginate_jq_and_errors_are_printed_like_gh(https_sim: GitHubSimulator,
                                                    env: dict[str, str]) -> None:
    tags = gh(env, "api", f"repos/{REPO}/releases?per_page=2", "--paginate",
              "-q", ".[].tag_name")
    assert tags.out == b"v1.5.0\nv1.4.0\nv1.3.0\nv1.2.0\nv1.1.0\n"
    missing = gh(env, "api", f"repos/{REPO}/nope")
    assert missing.code == 1 and b'"Not Found"' in missing.out
    assert missing.err == "gh: Not Found (HTTP 404)\n"
    assert upstream(https_sim) == [f"/repos/{REPO}/releases"] * 3 + [f"/repos/{REPO}/nope"]


def test_a_write_goes_through_the_cache_and_invalidates(https_sim: GitHubSimulator,
                                                        env: dict[str, str]) -> None:
    comments = f"repos/{REPO}/issues/1/comments"
    gh(env, "api", comments)
    gh(env, "api", comments)
    assert len(upstream(https_sim)) == 1
    written = gh(env, "api", "-X", "POST", comments, "-f", "body=hello from a job")
    assert written.code == 0 and b'"body":"hello from a job"' in written.out
    assert fake_runs(env) == []  # github-p2p's own gh api sent it, with gh's token
    assert [(r.method, r.token) for r in https_sim.records() if r.method == "POST"] == [
        ("POST", TOKEN)]
    again = gh(env, "api", comments)
    assert len(upstream(https_sim)) == 2  # the cached list was forgotten
    assert b"hello from a job" in again.out
    # A write the wrapper does not format itself runs gh, then forgets the path all the same.
    assert gh(env, "api", "-X", "POST", comments, "-f", "body=x", "--include").code == 0
    assert fake_runs(env) == [f"api -X POST {comments} -f body=x --include"]
    gh(env, "api", comments)
    assert len(upstream(https_sim)) == 3


def test_unknown_flags_and_commands_pass_through_with_their_exit_code(
        https_sim: GitHubSimulator, env: dict[str, str]) -> None:
    env["FAKE_GH_EXIT"] = "3"
    for argv in (["api", f"repos/{REPO}", "--include"],
                 ["pr", "list", "--json", "number", "--frobnicate", "x y"],
                 ["codespace", "ssh"]):
        assert gh(env, *argv).code == 3
    assert fake_runs(env) == ["api repos/octo/hello --include",
                              "pr list --json number --frobnicate x y", "codespace ssh"]
    assert https_sim.records() == []


def test_json_commands_are_cached_by_family_ttl_and_forgotten_after_a_write(
        env: dict[str, str]) -> None:
    class Clock:
        now = 1_800_000_000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    argv = ["run", "list", "-R", REPO, "--json", "status"]
    assert gh(env, *argv, clock=clock).out == b'[{"run":1}]\n'
    clock.now += 59
    assert gh(env, *argv, clock=clock).out == b'[{"run":1}]\n'  # from the cache
    assert gh(env, "run", "list", "-R", "octo/other", "--json", "status",
              clock=clock).out == b'[{"run":2}]\n'  # another repository, another key
    clock.now += 2
    assert gh(env, *argv, clock=clock).out == b'[{"run":3}]\n'  # runs live 60 s
    assert gh(env, "pr", "merge", "5", clock=clock).code == 0
    assert gh(env, *argv, clock=clock).out == b'[{"run":5}]\n'  # a write forgets them
    env["FAKE_GH_EXIT"] = "1"
    assert gh(env, "repo", "view", REPO, "--json", "name", clock=clock).code == 1
    assert gh(env, "repo", "view", REPO, "--json", "name", clock=clock).code == 1
    assert len(fake_runs(env)) == 7  # failures are never cached
    env.pop("FAKE_GH_EXIT")
    env["CLICOLOR_FORCE"] = "1"  # output for a terminal: always gh itself
    gh(env, *argv, clock=clock)
    assert len(fake_runs(env)) == 8


def test_a_missing_gh_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    shim_dir = ROOT / "scripts" / "gh-shim"
    env["PATH"] = f"{shim_dir}{os.pathsep}{tmp_path / 'empty'}"
    with pytest.raises(ConfigError, match="real gh CLI is not installed"):
        gh(env, "pr", "create")
    env["GITHUB_P2P_REAL_GH"] = str(shim_dir / "gh")  # pointing at the shim itself
    with pytest.raises(ConfigError, match="not an executable gh"):
        gh(env, "pr", "create")
    # gh api GETs need no gh at all.
    env.pop("GITHUB_P2P_REAL_GH")
    assert gh(env, "api", f"repos/{REPO}").code == 0
    done = subprocess.run([sys.executable, "-m", "github_p2p.cli", "gh", "pr", "create"],
                          env={**env, "PATH": env["PATH"] + os.pathsep + os.path.dirname(
                              sys.executable)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "real gh CLI is not installed" in done.stderr
    assert "Traceback" not in done.stderr


# -- the real gh -------------------------------------------------------------------------------

@pytest.mark.skipif(REAL_GH is None, reason="gh is not installed (scripts/ensure-gh)")
def test_the_real_gh_through_the_wrapper_and_its_shim(https_sim: GitHubSimulator,
                                                      env: dict[str, str],
                                                      tmp_path: Path) -> None:
    assert REAL_GH is not None
    env["GITHUB_P2P_REAL_GH"] = REAL_GH
    direct_env = {**env, "PATH": f"{os.path.dirname(REAL_GH)}{os.pathsep}/bin"}

    def direct(*argv: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([REAL_GH, *argv], env=direct_env, capture_output=True,
                              timeout=60)

    # Byte for byte what gh prints, for a single object, paginated pages and --jq.
    for argv, pages in (([f"repos/{REPO}"], 1),
                        ([f"repos/{REPO}/releases?per_page=2", "--paginate"], 3),
                        ([f"repos/{REPO}", "-q", ".owner"], 0)):  # cached by the first
        https_sim.reset_records()
        wrapped = gh(env, "api", *argv)
        assert len(https_sim.records()) == pages
        wrapped_again = gh(env, "api", *argv)
        assert len(https_sim.records()) == pages  # the second costs nothing
        real = direct("api", *argv)
        assert real.returncode == wrapped.code == 0, real.stderr
        assert wrapped.out == wrapped_again.out == real.stdout
    # A write goes to GitHub through the real gh, and the wrapper's next read sees it.
    comments = f"repos/{REPO}/issues/1/comments"
    assert gh(env, "api", comments).out == b"[]"
    https_sim.reset_records()
    assert gh(env, "api", "-X", "POST", comments, "-f", "body=written by gh").code == 0
    assert [(r.method, r.token) for r in https_sim.records()] == [("POST", TOKEN)]
    assert b"written by gh" in gh(env, "api", comments).out
    # gh's own exit codes come back unchanged.
    assert gh(env, "api", f"repos/{REPO}/nope", "--include").code == 1
    # The shim first on PATH: `gh` in a later step is the wrapper.
    env["PATH"] = f"{ROOT / 'scripts' / 'gh-shim'}{os.pathsep}{env['PATH']}"
    env["GITHUB_P2P_BIN"] = str(Path(sys.executable).with_name("github-p2p"))
    gh(env, "api", f"repos/{REPO}")  # the write above invalidated the repository: refill
    https_sim.reset_records()
    shimmed = subprocess.run(["gh", "api", f"repos/{REPO}"], env=env, capture_output=True,
                             timeout=60)
    assert shimmed.returncode == 0 and https_sim.records() == []  # served by the wrapper
    assert shimmed.stdout == direct("api", f"repos/{REPO}").stdout
