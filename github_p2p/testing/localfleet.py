"""A whole fleet on this machine: a hub and runner peers as real processes on loopback.

Used by ``github-p2p demo``, the integration tests and the benchmarks. Each node is a
``github-p2p`` subprocess started exactly as a user would start it, and is "up" only once its
``--ready-file`` exists. Everything is stopped (SIGTERM, then SIGKILL) on exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from github_p2p.errors import GitHubP2PError

__all__ = ["LocalFleet", "NodeProcess", "free_port"]


def free_port() -> int:
    """An unused TCP port on 127.0.0.1 (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class NodeProcess:
    """One running ``github-p2p`` node."""

    name: str
    process: subprocess.Popen[bytes]
    ready_file: Path
    log_file: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """The node's local HTTP endpoint."""
        return str(self.info["endpoint"])

    @property
    def multiaddr(self) -> str:
        """The node's first multiaddr (loopback)."""
        return str(self.info["multiaddrs"][0])

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Block until the ready file appears; raise with the log tail if the node died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                self.info = json.loads(self.ready_file.read_text())
                return self.info
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise GitHubP2PError(f"{self.name} did not become ready "
                             f"(exit {self.process.poll()}):\n{tail}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL at once (a crash)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class LocalFleet:
    """Starts hubs and peers as subprocesses in a scratch directory, and cleans up."""

    def __init__(self, api_url: str, *, secret: str = "demo-fleet-secret-0001",
                 repository: str = "octo/hello", workdir: Path | None = None,
                 extra_env: Mapping[str, str] | None = None, code: Path | None = None) -> None:
        self.api_url = api_url
        #: Another checkout to run the nodes from (benchmarks of an earlier design); ``python
        #: -m`` puts the working directory first on the path, so the nodes start there.
        self.code = code
        self.secret = secret
        self.repository = repository
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="github-p2p-fleet-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.extra_env = dict(extra_env or {})
        self.hubs: list[NodeProcess] = []
        self.peers: list[NodeProcess] = []

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment a node of this fleet runs with."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("GITHUB_P2P_ENDPOINT", "MCP_P2P_BOOTSTRAP_PEERS")}
        env.update(GITHUB_API_URL=self.api_url, GITHUB_P2P_SECRET=self.secret,
                   GITHUB_REPOSITORY=self.repository, PYTHONUNBUFFERED="1")
        if self.code is not None:
            env["PYTHONPATH"] = str(self.code)
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def _spawn(self, name: str, args: list[str], env: Mapping[str, str]) -> NodeProcess:
        node_dir = self.workdir / name
        node_dir.mkdir(parents=True, exist_ok=True)
        ready = node_dir / "ready.json"
        ready.unlink(missing_ok=True)
        log_file = node_dir / "node.log"
        with open(log_file, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "github_p2p.cli", *args, "--ready-file", str(ready)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env),
                cwd=self.code,
            )
        return NodeProcess(name, process, ready, log_file)

    def start_hub(self, *, port: int | None = None, name: str | None = None,
                  wait: bool = True, timeout: float = 30.0, args: Sequence[str] = (),
                  env: Mapping[str, str] | None = None) -> NodeProcess:
        """Start (or restart, with the same name: same identity and port) a hub; ``args`` are
        extra ``bootstrap`` options, ``env`` overrides its environment."""
        name = name or f"hub{len(self.hubs)}"
        existing = next((h for h in self.hubs if h.name == name), None)
        if existing is not None and port is None:
            port = int(existing.info["multiaddrs"][0].split("/tcp/")[1].split("/")[0])
        node_dir = self.workdir / name
        argv = ["bootstrap", "--listen-host", "127.0.0.1", "--port", str(port or free_port()),
                "--http-port", str(free_port()), "--cache-dir", str(node_dir / "cache"),
                "--identity", str(node_dir / "identity.key"), *args]
        hub = self._spawn(name, argv, self.env(**dict(env or {})))
        if existing is not None:
            self.hubs.remove(existing)
        self.hubs.append(hub)
        if wait:
            hub.wait_ready(timeout)
        return hub

    def start_peer(self, *, bootstrap: str | None = None, name: str | None = None,
                   wait: bool = True, timeout: float = 30.0, env: Mapping[str, str] | None = None
                   ) -> NodeProcess:
        """Start a runner peer linked to every hub (or to ``bootstrap``)."""
        name = name or f"peer{len(self.peers)}"
        addrs = bootstrap if bootstrap is not None else ",".join(h.multiaddr for h in self.hubs)
        node_dir = self.workdir / name
        args = ["peer", "--listen-host", "127.0.0.1", "--port", str(free_port()),
                "--http-port", str(free_port()), "--cache-dir", str(node_dir / "cache"),
                "--bootstrap", addrs]
        peer = self._spawn(name, args, self.env(RUNNER_NAME=name, **dict(env or {})))
        self.peers.append(peer)
        if wait:
            peer.wait_ready(timeout)
        return peer

    def close(self) -> None:
        """Stop every node and remove the scratch directory."""
        for node in [*self.peers, *self.hubs]:
            node.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> LocalFleet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
