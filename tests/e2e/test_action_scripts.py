"""The action's entry scripts on their own, without act: fast checks of their contracts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts" / "action"
sys.path.insert(0, str(SCRIPTS))

import environment  # noqa: E402  (the action's own modules, standard library only)
import summary  # noqa: E402

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"


def run_script(tmp_path: Path, name: str, **env: str) -> tuple[int, str, dict[str, str]]:
    """Run with the runner's files in tmp_path; returns (rc, stdout, step outputs)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    files = {name: tmp_path / name for name in ("output", "env", "path", "summary")}
    for f in files.values():
        f.touch()
    (tmp_path / "runner-temp").mkdir(exist_ok=True)
    full_env = {
        "PATH": os.environ["PATH"], "HOME": str(tmp_path), "RUNNER_OS": "Linux",
        "RUNNER_TEMP": str(tmp_path / "runner-temp"), "GITHUB_ACTION_PATH": str(REPO_ROOT),
        "RUNNER_TOOL_CACHE": str(tmp_path / "toolcache"),
        "GITHUB_OUTPUT": str(files["output"]), "GITHUB_ENV": str(files["env"]),
        "GITHUB_PATH": str(files["path"]), "GITHUB_STEP_SUMMARY": str(files["summary"]),
        **env,
    }
    done = subprocess.run(["bash", str(SCRIPTS / "run-python.sh"), name], env=full_env,
                          capture_output=True, text=True, timeout=120, check=False)
    outputs = dict(line.split("=", 1) for line in files["output"].read_text().splitlines()
                   if "=" in line)
    return done.returncode, done.stdout + done.stderr, outputs


def prepare(tmp_path: Path, **env: str) -> tuple[int, str, dict[str, str]]:
    env.setdefault("GP_PYTHON", sys.executable)
    env.setdefault("GP_WRAP_GH", "true")  # something uses the daemon, so it is not "off"
    return run_script(tmp_path, "prepare.py", **env)


def state_of(out: dict[str, str]) -> dict[str, object]:
    data: dict[str, object] = json.loads((Path(out["state-dir"]) / "state.json").read_text())
    return data


@pytest.mark.parametrize(("arch", "port"), [
    ("X64", "9000"), ("ARM64", "9001"), ("ARM", "9002"), ("X86", "9002"),
])
def test_ports_by_runner_arch(tmp_path: Path, arch: str, port: str) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH=arch)
    assert rc == 0, log
    assert out["port"] == port
    assert out["state-dir"] == str(tmp_path / "runner-temp" / f"github-p2p-{port}")
    assert out["python"] == sys.executable
    assert out["install"] == "lock"
    key = out["cache-key"]
    assert key.startswith(f"github-p2p-venv-v1-Linux-{arch}-cpython{PY}.")
    assert key.split("-")[-3] == "fleet"
    assert out["venv"] == str(tmp_path / "toolcache" / "github-p2p" / key)
    assert out["restore"] == "true"


def test_the_key_follows_the_lock_the_source_and_the_extras(tmp_path: Path) -> None:
    _, _, fleet = prepare(tmp_path / "a", GP_ARCH="X64")
    _, _, mcp = prepare(tmp_path / "b", GP_ARCH="X64", GP_MCP="true")
    assert mcp["cache-key"].split("-")[-3] == "fleet+mcp"
    assert fleet["cache-key"].split("-")[-2:] == mcp["cache-key"].split("-")[-2:]
    lock_hash = fleet["cache-key"].split("-")[-2]
    assert REPO_ROOT.joinpath("uv.lock").read_bytes() and len(lock_hash) == 12
    assert state_of(mcp)["extras"] == ["fleet", "mcp"]


def test_source_hash_ignores_bytecode_and_sees_edits(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "github_p2p", tree / "github_p2p",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("uv.lock", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, tree / name)
    first = environment.source_hash(tree)
    (tree / "github_p2p" / "__pycache__").mkdir(exist_ok=True)
    (tree / "github_p2p" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert environment.source_hash(tree) == first
    (tree / "github_p2p" / "core" / "ports.py").write_text("# edited\n")
    assert environment.source_hash(tree) != first


def test_http_port_is_left_to_the_daemon_rule(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PORT="19000", GP_HTTP_PORT="19080")
    assert rc == 0, log
    assert out["port"] == "19000" and "http-port" not in out
    rc, log, _ = prepare(tmp_path / "same", GP_ARCH="X64", GP_PORT="19000",
                         GP_HTTP_PORT="19000")
    assert "port and http-port must differ (both 19000)" in log


def test_secret_and_each_bootstrap_address_are_masked(tmp_path: Path) -> None:
    rc, log, _ = prepare(tmp_path, GP_ARCH="X64", GP_SECRET="s3cr3t",
                         GP_BOOTSTRAP_PEERS="/ip4/1.2.3.4/tcp/9100/p2p/A,\n/ip4/5.6.7.8/tcp/1/p2p/B")
    assert rc == 0, log
    masks = [line for line in log.splitlines() if line.startswith("::add-mask::")]
    assert masks == ["::add-mask::s3cr3t", "::add-mask::/ip4/1.2.3.4/tcp/9100/p2p/A",
                     "::add-mask::/ip4/5.6.7.8/tcp/1/p2p/B"]
    assert log.index("::add-mask::") == 0  # before anything else is printed


@pytest.mark.parametrize(("inputs", "off", "why"), [
    ({}, True, "no fleet is configured"),
    ({"GP_SECRET": "s"}, True, "a secret but no bootstrap-peers"),
    ({"GP_BOOTSTRAP_PEERS": "/ip4/1.2.3.4/tcp/9100/p2p/A"}, True,
     "bootstrap-peers is set without a secret"),
    ({"GP_SECRET": "s", "GP_BOOTSTRAP_PEERS": "/ip4/1.2.3.4/tcp/9100/p2p/A"}, False, ""),
    ({"GP_SECRET": "s", "GP_REGISTRY_ISSUE": "7"}, False, ""),
    ({"GP_WRAP_GH": "true"}, False, ""),
    ({"GP_MCP": "true"}, False, ""),
])
def test_off_when_nothing_would_use_a_daemon(tmp_path: Path, inputs: dict[str, str], off: bool,
                                             why: str) -> None:
    env = {"GP_ARCH": "X64", "GP_WRAP_GH": "false", **inputs}
    rc, log, out = prepare(tmp_path, **env)
    assert rc == 0, log
    if off:
        assert out["install"] == "skip" and out["python"] == "" and out["venv"] == ""
        assert f"::notice title=github-p2p::github-p2p is off: {why}" in log
        assert state_of(out)["status"] == "off"
        rc, _, started = run_script(tmp_path, "start.py", STATE_DIR=out["state-dir"])
        assert rc == 0 and started["status"] == "off" and started["endpoint"] == ""
    else:
        assert out["install"] == "lock", log
    assert ("without a secret" in why) == ("::warning" in log)


def test_bad_input_degrades_with_a_warning(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PORT="90000")
    assert rc == 0
    assert "::warning title=github-p2p::input port is not a TCP port: '90000'" in log
    assert state_of(out)["failed"] == "input port is not a TCP port: '90000'"


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
    _, _, out = prepare(tmp_path, GP_ARCH="X64", GP_PORT="x")
    rc, log, started = run_script(tmp_path, "start.py", STATE_DIR=out["state-dir"])
    assert rc == 0, log
    assert started["status"] == "degraded" and started["endpoint"] == ""
    assert "::warning" not in log  # reported once, by the step that failed


def test_stop_without_a_daemon_never_fails(tmp_path: Path) -> None:
    rc, log, _ = run_script(tmp_path, "stop.py")
    assert rc == 0, log
    assert "github-p2p was not started in this job" in log
    assert "The github-p2p action did not run in this job" in (tmp_path / "summary").read_text()


def test_python_version_comes_from_the_runner_tool_cache(tmp_path: Path) -> None:
    cache = tmp_path / "toolcache"
    for patch in ("9", "10"):  # version order, not string order: .10 wins
        bin_dir = cache / "Python" / f"{PY}.{patch}" / "arm64" / "bin"
        bin_dir.mkdir(parents=True)
        (bin_dir / "python3").symlink_to(sys.executable)
    rc, log, out = prepare(tmp_path, GP_ARCH="ARM64", GP_PYTHON=PY)
    assert rc == 0, log
    assert out["python"] == str(cache / "Python" / f"{PY}.10" / "arm64" / "bin" / "python3")


def test_missing_python_version_falls_back_to_the_system_python(tmp_path: Path) -> None:
    rc, log, out = prepare(tmp_path, GP_ARCH="X64", GP_PYTHON="3.99")
    assert rc == 0, log
    assert "Python '3.99' not found; using" in log
    assert out["python"]


def test_uv_comes_from_the_lock_for_each_platform() -> None:
    lock = (REPO_ROOT / "uv.lock").read_text()
    for tags, fragment in ((("manylinux", "x86_64"), "manylinux_2_17_x86_64"),
                           (("manylinux", "aarch64"), "aarch64"),
                           (("macosx", "arm64"), "macosx_11_0_arm64")):
        version, url, digest = environment.uv_wheel(lock, tags)
        assert fragment in url and url.startswith("https://files.pythonhosted.org/")
        assert len(digest) == 64 and f"uv-{version}-" in url
    with pytest.raises(LookupError):
        environment.uv_wheel(lock, ("plan9",))


def test_requirement_specs_get_the_extras() -> None:
    assert environment.with_extras("github-p2p==0.3.0", ("fleet", "mcp")) == \
        "github-p2p[fleet,mcp]==0.3.0"
    assert environment.with_extras("github-p2p", ("fleet",)) == "github-p2p[fleet]"
    assert environment.with_extras("git+https://x/y", ("fleet",)) == "git+https://x/y"


def test_summary_shows_only_reported_figures() -> None:
    stats = {"requests": 10, "local_hits": 5, "peer_hits": 3, "misses": 2,
             "api_calls_made": 2, "api_calls_saved": 8, "hit_rate": 0.8, "status": "active",
             "connected_peers": 1, "fleet_errors": 0, "integrity_failures": 1,
             "rate_limit_remaining": 4321}
    text = summary.render({"setup_seconds": 2.5, "environment": "restored"}, stats, [])
    assert "### 🟢 github-p2p: 8 API calls saved" in text
    assert "| **API calls saved** | **8** of 10 requests |" in text
    assert "| Hit rate | 80.0 % |" in text  # hit_rate is a fraction
    assert "| Rate limit remaining | 4,321 |" in text
    assert "| Integrity failures | ⚠️ 1 |" in text and "| Fleet errors | 0 |" in text
    assert "Too large to share" not in text  # not reported, so not shown
    assert "| Set-up | 2.5 s (environment restored from the cache) |" in text
    assert '"Local cache" : 5' in text and '"Fleet" : 3' in text and '"GitHub" : 2' in text
    assert "Stale" not in text.split("```mermaid")[1].split("```")[0]  # no empty slices
    quiet = summary.render({}, {"requests": 0, "api_calls_saved": 0, "status": "local-only"})
    assert "mermaid" not in quiet


@pytest.mark.slow
def test_a_cold_build_from_the_lock_runs_offline(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """environment.build from uv.lock with this machine's uv cache (what bootstrap-env
    filled): a relocatable venv renamed into place, whose github-p2p runs."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    lock = (REPO_ROOT / "uv.lock").read_text()
    version, _, _ = environment.uv_wheel(lock)
    if uv is None or f"uv {version}" not in subprocess.run(
            [uv, "--version"], capture_output=True, text=True, check=True).stdout:
        pytest.skip(f"the locked uv {version} is not in this environment")
    root = tmp_path / "toolcache" / "github-p2p"
    (root / f"uv-{version}").mkdir(parents=True)
    shutil.copy(uv, root / f"uv-{version}" / "uv")  # as if downloaded from the lock's URL
    source = tmp_path / "action"
    shutil.copytree(REPO_ROOT / "github_p2p", source / "github_p2p",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("uv.lock", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO_ROOT / name, source / name)
    key = "github-p2p-venv-test"
    venv = root / key
    monkeypatch.setenv("UV_OFFLINE", "1")
    with open(tmp_path / "install.log", "w", encoding="utf-8") as log:
        marker = environment.build(venv=venv, key=key, python=sys.executable, source=source,
                                   spec=None, extras=("fleet",), log=log)
    assert marker["key"] == key and environment.is_ready(venv, key)
    assert not list(root.glob(f".{key}.tmp-*"))  # built aside, renamed whole
    version_out = subprocess.run([str(venv / "bin" / "github-p2p"), "--version"],
                                 capture_output=True, text=True, timeout=60, check=True).stdout
    assert version_out.startswith("github-p2p ")
    moved = tmp_path / "restored" / key  # relocatable: a restore elsewhere still runs
    shutil.move(str(venv), moved)
    assert subprocess.run([str(moved / "bin" / "github-p2p"), "--version"],
                          capture_output=True, text=True, timeout=60).returncode == 0


def test_a_failed_build_degrades_with_the_reason(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "github_p2p").mkdir(parents=True)
    (checkout / "uv.lock").write_text("version = 1\n")  # a lock without uv in it
    (checkout / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    _, _, out = prepare(tmp_path, GP_ARCH="X64", GP_INSTALL_SOURCE=str(checkout))
    assert out["install"] == "lock"
    rc, log, started = run_script(tmp_path, "start.py", STATE_DIR=out["state-dir"],
                                  GP_PYTHON_BIN=sys.executable, GP_PORT="9000")
    assert rc == 0, log
    assert started["status"] == "degraded" and started["endpoint"] == ""
    assert "::warning title=github-p2p::could not install github-p2p (uv is not in uv.lock" \
        in log
    assert state_of(out)["failed"].startswith("could not install github-p2p")  # type: ignore[union-attr]


def test_the_mcp_url_is_where_the_daemon_serves_mcp() -> None:
    import start

    from github_p2p.nodes.mcpmount import DAEMON_MCP_PATH

    assert start.MCP_PATH == DAEMON_MCP_PATH
