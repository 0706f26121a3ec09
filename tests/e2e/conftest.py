"""What the act tests with real daemons share: a simulated GitHub API and a bootstrap node on
loopback, and the github-p2p of this test environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from github_p2p.testing.localfleet import free_port
from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

BIN = Path(sys.executable).parent
SECRET = "e2e-fleet-secret-0123456789"


@dataclass
class Fleet:
    """A running simulator and hub: what the workflows' secrets and env point at."""

    sim: GitHubSimulator
    bootstrap: str

    @property
    def api_url(self) -> str:
        return str(self.sim.url)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            data = json.loads(path.read_text())
            assert isinstance(data, dict)
            return data
        assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
        time.sleep(0.05)
    raise TimeoutError(f"no {path} after {timeout} s")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A simulated GitHub API and a bootstrap node with SECRET; both stopped at the end."""
    if not (BIN / "github-p2p").exists():
        pytest.skip("github-p2p is not installed in this environment")
    tmp = tmp_path_factory.mktemp("fleet")
    with GitHubSimulator(SimulatorConfig(rate_limit=5000)) as sim:
        env = {**os.environ, "GITHUB_P2P_SECRET": SECRET}
        with open(tmp / "hub.log", "wb") as log:
            hub = subprocess.Popen([str(BIN / "github-p2p"), "bootstrap",
                                    "--port", str(free_port()), "--http-port", str(free_port()),
                                    "--cache-dir", str(tmp / "hub"),
                                    "--ready-file", str(tmp / "hub.json")],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            addrs = _wait_for(tmp / "hub.json", hub)["multiaddrs"]
            assert isinstance(addrs, list) and addrs
            yield Fleet(sim, str(addrs[0]))
        finally:
            hub.terminate()
            try:
                hub.wait(timeout=10)
            except subprocess.TimeoutExpired:
                hub.kill()
