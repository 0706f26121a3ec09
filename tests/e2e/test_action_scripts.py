"""The action's entry scripts on their own, without act: fast checks of their contracts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts" / "action"


def run_script(tmp_path: Path, argv: list[str], **env: str) -> tuple[int, str, dict[str, str]]:
    """Run with the runner's files in tmp_path; returns (rc, stdout, step outputs)."""
    files = {name: tmp_path / name for name in ("output", "env", "path", "summary")}
    for f in files.values():
        f.touch()
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    full_env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"), "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "GITHUB_OUTPUT": str(files["output"]), "GITHUB_ENV": str(files["env"]),
        "GITHUB_PATH": str(files["path"]), "GITHUB_STEP_SUMMARY": str(files["summary"]),
        **env,
    }
    done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=60,
                          check=False)
    outputs = dict(line.split("=", 1) for line in files["output"].read_text().splitlines()
                   if "=" in line)
    return done.returncode, done.stdout + done.stderr, outputs


def prepare(tmp_path: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    env.setdefault("GP_PYTHON", sys.executable)
    return run_script(tmp_path, ["bash", str(SCRIPTS / "prepare.sh")], **env)


@pytest.mark.parametrize(("arch", "port", "http_port"), [
    ("X64", "9000", "8700"), ("ARM64", "9001", "8701"), ("ARM", "9002", "8702"),
    ("X86", "9002", "8702"),
])
def test_ports_by_runner_arch(tmp_path: Path, arch: str, port: str, http_port: str) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH=arch)
    assert rc == 0, log
    assert (out["port"], out["http-port"]) == (port, http_port)
    assert out["state-dir"] == str(tmp_path / "runner-temp" / f"github-p2p-{port}")
    assert out["python"] == sys.executable
    assert out["install"] == "true"
    key = out["cache-key"]
    assert key.startswith(f"github-p2p-wheels-v1-Linux-{arch}-py{sys.version_info[0]}.")
    assert out["wheelhouse"].endswith("/" + key)


def test_ports_can_be_overridden(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PORT="19000", GP_HTTP_PORT="19080")
    assert rc == 0, log
    assert (out["port"], out["http-port"]) == ("19000", "19080")


def test_secret_and_each_bootstrap_address_are_masked(tmp_path: Path) -> None:
    rc, log, _ = prepare(tmp_path, GP_ARCH="X64", GP_SECRET="s3cr3t",
                         GP_BOOTSTRAP_PEERS="/ip4/1.2.3.4/tcp/9100/p2p/A,\n/ip4/5.6.7.8/tcp/1/p2p/B")
    assert rc == 0, log
    masks = [line for line in log.splitlines() if line.startswith("::add-mask::")]
    assert masks == ["::add-mask::s3cr3t", "::add-mask::/ip4/1.2.3.4/tcp/9100/p2p/A",
                     "::add-mask::/ip4/5.6.7.8/tcp/1/p2p/B"]
    assert log.index("::add-mask::") == 0  # before anything else is printed


def test_bad_input_degrades_with_a_warning(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PORT="90000")
    assert rc == 0
    assert "::warning title=github-p2p::input port is not a TCP port: '90000'" in log
    assert (Path(out["state-dir"]) / "failed").exists()


def test_bad_input_fails_with_fail_on_error(tmp_path: Path) -> None:
    rc, log, _ = prepare(tmp_path, GP_ARCH="X64", GP_PORT="x", FAIL_ON_ERROR="true")
    assert rc == 1
    assert "::error title=github-p2p::input port is not a TCP port: 'x'" in log


def test_preinstalled_needs_github_p2p_on_path(tmp_path: Path) -> None:
    rc, log, _ = prepare(tmp_path, GP_ARCH="X64", GP_INSTALL_SOURCE="preinstalled",
                           PATH="/usr/bin:/bin")
    assert rc == 0
    assert "github-p2p is not on PATH" in log


def test_start_after_a_failed_prepare_publishes_degraded(tmp_path: Path) -> None:
    state = tmp_path / "runner-temp" / "github-p2p-9000"
    state.mkdir(parents=True)
    (state / "failed").write_text("earlier problem\n")
    rc, log, out = run_script(tmp_path, ["bash", str(SCRIPTS / "run-python.sh"), "start.py"],
                              STATE_DIR=str(state))
    assert rc == 0, log
    assert out["status"] == "degraded" and out["endpoint"] == ""
    assert "::warning" not in log  # reported once, by the step that failed


def test_stop_without_a_daemon_never_fails(tmp_path: Path) -> None:
    rc, log, _ = run_script(tmp_path, ["bash", str(SCRIPTS / "run-python.sh"), "stop.py"])
    assert rc == 0, log
    assert "github-p2p was not started in this job" in log
    summary = (tmp_path / "summary").read_text()
    assert "the github-p2p action did not run in this job" in summary


def test_python_version_comes_from_the_runner_tool_cache(tmp_path: Path) -> None:
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    cache = tmp_path / "toolcache"
    for patch in ("9", "10"):  # version order, not string order: .10 wins
        bin_dir = cache / "Python" / f"{want}.{patch}" / "arm64" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").symlink_to(sys.executable)
    rc, log, out = prepare(tmp_path, GP_ARCH="ARM64", GP_PYTHON=want,
                           RUNNER_TOOL_CACHE=str(cache))
    assert rc == 0, log
    assert out["python"] == str(cache / "Python" / f"{want}.10" / "arm64" / "bin" / "python3")
    assert out["python-version"] == want


def test_missing_python_version_falls_back_to_the_system_python(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PYTHON="3.99",
                           RUNNER_TOOL_CACHE=str(tmp_path / "none"))
    assert rc == 0, log
    assert "Python '3.99' not found; using" in log
    assert out["python"]
