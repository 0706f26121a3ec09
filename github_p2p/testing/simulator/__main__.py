"""``python -m github_p2p.testing.simulator``: run a simulator until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from github_p2p.errors import ConfigError
from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.server import GitHubSimulator

__all__ = ["main", "write_ready_file"]


def write_ready_file(path: Path, payload: dict[str, object]) -> None:
    """Write JSON to ``path`` atomically: readers see the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m github_p2p.testing.simulator",
        description="Serve a simulated GitHub REST API on loopback until SIGTERM/SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 = any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per API request")
    parser.add_argument("--rate-limit", type=int, default=5000, help="requests per hour budget")
    parser.add_argument("--ready-file", type=Path, help='write {"url": ...} here once listening')
    parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", type=Path, help="private key of --tls-cert")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator; exit codes: 0 stopped by a signal, 1 failed, 2 bad usage."""
    args = _parser().parse_args(argv)
    try:
        context = None
        if args.tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(args.tls_cert, args.tls_key)
        config = SimulatorConfig(
            host=args.host,
            port=args.port,
            latency=args.latency,
            rate_limit=args.rate_limit,
            ssl_context=context,
        )
    except (ConfigError, OSError, ssl.SSLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    simulator = GitHubSimulator(config)
    try:
        simulator.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(simulator.url, flush=True)
        if args.ready_file is not None:
            write_ready_file(args.ready_file, {"url": simulator.url, "pid": os.getpid()})
        # Wake up now and then so the signal handler runs promptly on every platform.
        while not stop.wait(0.2):
            pass
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
