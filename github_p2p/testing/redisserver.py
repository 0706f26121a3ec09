"""A real ``redis-server`` on a loopback port, for tests and benchmarks (never a fake: fakeredis's
TCP server breaks coredis pub/sub, NOTES.md).

The server keeps nothing on disk (``--save ''``, ``--appendonly no``) and lives in a scratch
directory; it is "up" once it answers ``PING`` on its port. It can be stopped and started again
on the same port, which is how the tests take Redis away from running hubs.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from github_p2p.errors import GitHubP2PError

__all__ = ["RedisClusterNodes", "RedisServer", "redis_server_path"]


def redis_server_path() -> str | None:
    """The ``redis-server`` binary (``scripts/ensure-redis`` installs it), or ``None``."""
    return shutil.which("redis-server")


def _free_port(*, below: int = 65536) -> int:
    """A free loopback port under ``below`` (the kernel's pick while it obliges)."""
    for _ in range(1000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < below:
            return port
    raise GitHubP2PError(f"no free loopback port under {below}")


#: A cluster node also listens on its port + 10,000, so its own port must be below this.
_CLUSTER_PORT_LIMIT = 55536


class RedisServer:
    """``redis-server`` on 127.0.0.1; ``args`` are extra options (``--requirepass``, TLS...)."""

    def __init__(self, *, port: int | None = None, args: Sequence[str] = (),
                 workdir: Path | None = None) -> None:
        binary = redis_server_path()
        if binary is None:
            raise GitHubP2PError("redis-server is not installed (scripts/ensure-redis)")
        self.binary = binary
        self.port = port or _free_port()
        self.args = list(args)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="github-p2p-redis-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the server (again, on the same port) and wait until it answers ``PING``."""
        if self.process is not None and self.process.poll() is None:
            return self
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - the child holds it
        with log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Block until ``PING`` is answered (``-NOAUTH`` counts: the server is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.02)
        raise GitHubP2PError(f"redis-server on port {self.port} did not start:\n"
                             + self.log_tail())

    def ping(self) -> bool:
        """True when something answers like Redis on the port."""
        try:
            reply = self.command("PING")
        except OSError:
            return False
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def command(self, *args: str) -> bytes:
        """Send one command (no password) and return the start of the raw reply."""
        request = f"*{len(args)}\r\n".encode() + b"".join(
            f"${len(arg.encode())}\r\n{arg}\r\n".encode() for arg in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request)
            return sock.recv(65536)

    def stop(self) -> None:
        """SIGTERM and wait (what an operator's restart does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self) -> str:
        """The end of the server's log."""
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RedisClusterNodes:
    """A Redis Cluster of ``count`` primaries on loopback (``redis-cli --cluster create``)."""

    def __init__(self, workdir: Path, count: int = 3) -> None:
        self.nodes = [RedisServer(workdir=workdir / f"node{i}",
                                  port=_free_port(below=_CLUSTER_PORT_LIMIT),
                                  args=["--cluster-enabled", "yes",
                                        "--cluster-config-file", "nodes.conf"])
                      for i in range(count)]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0?cluster=yes`` of the first node."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0?cluster=yes"

    def start(self, timeout: float = 60.0) -> RedisClusterNodes:
        """Start the nodes, join them, and wait until every node says the cluster is ok."""
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise GitHubP2PError("redis-cli is not installed (scripts/ensure-redis)")
        subprocess.run([cli, "--cluster", "create",
                        *[f"127.0.0.1:{node.port}" for node in self.nodes],
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not all(b"cluster_state:ok" in node.command("CLUSTER", "INFO")
                      for node in self.nodes):
            if time.monotonic() > deadline:
                raise GitHubP2PError("the Redis Cluster did not come up")
            time.sleep(0.05)
        return self

    def flush(self) -> None:
        """Empty every node."""
        for node in self.nodes:
            node.command("FLUSHALL")

    def close(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.close()
