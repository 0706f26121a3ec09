"""Packaging as users meet it: the client-only base install, the extras, the lock, the version,
the license, and the systemd unit shipped as a file."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from github_p2p import __version__
from github_p2p.cli.main import build_parser

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
UV = Path(sys.executable).parent / "uv"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_base_install_is_the_client_without_libp2p() -> None:
    base = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    for daemon_only in ("libp2p", "trio", "hypercorn", "starlette", "prometheus"):
        assert daemon_only not in base
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(d.startswith("libp2p==") for d in extras["fleet"])
    assert any(d.startswith("mcp") for d in extras["mcp"])
    assert "dev" not in extras  # dev tools are dependency groups, not an extra
    assert {"test", "lint", "dev"} <= set(PYPROJECT["dependency-groups"])


def test_project_metadata() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and "LICENSE" in project["license-files"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(project["urls"])
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in
               project["classifiers"])


def test_version_is_single_sourced() -> None:
    done = subprocess.run([sys.executable, "-m", "github_p2p.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == f"github-p2p {__version__}"
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "github_p2p.__version__"}


@pytest.mark.skipif(not UV.exists(), reason="uv is not in this environment (bootstrap-env)")
def test_the_lock_matches_pyproject() -> None:
    done = subprocess.run([str(UV), "lock", "--check", "--offline"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr + "\nrun `uv lock` and commit uv.lock"


def test_the_systemd_unit_runs_a_valid_command() -> None:
    unit = (ROOT / "deploy" / "systemd" / "github-p2p-bootstrap.service").read_text()
    lines = unit.replace("\\\n", " ").splitlines()
    settings = dict(line.split("=", 1) for line in lines if "=" in line
                    and not line.startswith("#"))
    argv = shlex.split(settings["ExecStart"])
    assert argv[0] == "/opt/github-p2p/bin/github-p2p" and argv[1] == "bootstrap"
    args = build_parser().parse_args(argv[1:])  # every flag exists; ConfigError otherwise
    assert (args.port, args.http_host, args.http_port) == (9100, "127.0.0.1", 9180)
    assert settings["Restart"] == "always" and settings["User"] == "github-p2p"
    assert settings["EnvironmentFile"] == "/etc/github-p2p/hub.env"
    assert "docs/bootstrap-node.md" in settings["Documentation"]
    doc = (ROOT / "docs" / "bootstrap-node.md").read_text()
    assert "deploy/systemd/github-p2p-bootstrap.service" in doc
    # GitHub refuses secret names starting with GITHUB_: the docs never ask for one.
    assert not re.search(r"gh secret set GITHUB_", doc)


def installed(tmp_path: Path, *extras: str) -> Path:
    """A real virtualenv with github-p2p and ``extras`` exactly as uv.lock says (offline, from
    this machine's uv cache), built from a copy of the source; its directory."""
    source = tmp_path / "src"
    shutil.copytree(ROOT / "github_p2p", source / "github_p2p",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "uv.lock", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env.update(UV_OFFLINE="1", UV_PROJECT_ENVIRONMENT=str(venv), UV_PYTHON_DOWNLOADS="never")
    subprocess.run([str(UV), "sync", "--frozen", "--no-dev", "--no-editable", "--quiet",
                    "--project", str(source), "--python", sys.executable,
                    *(arg for extra in extras for arg in ("--extra", extra))], env=env,
                   check=True, timeout=300, capture_output=True)
    return venv


@pytest.mark.slow
@pytest.mark.skipif(not UV.exists(), reason="uv is not in this environment (bootstrap-env)")
def test_client_only_install_serves_api_without_libp2p(tmp_path: Path, sim) -> None:
    """A real virtualenv with the base install only: GitHubClient and `github-p2p api` work
    against the simulator, and the daemons say which extra they need instead of a
    traceback."""
    venv = installed(tmp_path)
    python, exe = venv / "bin" / "python", venv / "bin" / "github-p2p"
    probe = ("import importlib.util as u, json; print(json.dumps({m: u.find_spec(m) is not None "
             "for m in ('libp2p', 'trio', 'hypercorn', 'github_p2p')}))")
    found = json.loads(subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                                      check=True, timeout=60).stdout)
    assert found == {"libp2p": False, "trio": False, "hypercorn": False, "github_p2p": True}

    run_env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_API_URL": sim.url,
               "GITHUB_TOKEN": "ghs_client_only", "GITHUB_REPOSITORY": "octo/hello",
               "GITHUB_P2P_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):
        done = subprocess.run([str(exe), "api", "/repos/octo/hello"], env=run_env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["full_name"] == "octo/hello"
    assert len(sim.records()) == 1  # the second answer came from the local cache

    code = ("from github_p2p import GitHubClient\n"
            "with GitHubClient.from_env() as gh: print(gh.get('/repos/octo/hello')['name'])")
    done = subprocess.run([str(python), "-c", code], env=run_env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "hello"), done.stderr

    done = subprocess.run([str(exe), "peer"], env=run_env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "needs the fleet extra" in done.stderr and "github-p2p[fleet]" in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not UV.exists(), reason="uv is not in this environment (bootstrap-env)")
async def test_the_mcp_extra_alone_serves_mcp_over_stdio(tmp_path: Path, sim) -> None:
    """`pip install 'github-p2p[mcp]'`, nothing else: `github-p2p mcp` answers the official
    SDK's client over stdio and reads GitHub through its in-process cache."""
    mcp = pytest.importorskip("mcp")
    venv = installed(tmp_path, "mcp")
    params = mcp.StdioServerParameters(
        command=str(venv / "bin" / "github-p2p"), args=["mcp"],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GITHUB_API_URL": sim.url,
             "GITHUB_TOKEN": "ghs_mcp_extra", "GITHUB_REPOSITORY": "octo/hello",
             "GITHUB_P2P_CACHE_DIR": str(tmp_path / "cache")})
    async with mcp.Client(params) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"github_get", "cache_stats"} <= tools
        result = await client.call_tool("github_get", {"path": "/repos/octo/hello"})
        assert not result.is_error, result
        assert (result.structured_content or {})["data"]["full_name"] == "octo/hello"
    assert len(sim.records()) == 1
