"""The simulator's HTTP(S) server and its lifecycle: :class:`GitHubSimulator`."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from nacl.public import PrivateKey

from github_p2p.testing.simulator.config import SimulatorConfig
from github_p2p.testing.simulator.control import CONTROL_PREFIX, handle_control
from github_p2p.testing.simulator.oidc import OidcProvider
from github_p2p.testing.simulator.records import RequestRecord, count_records
from github_p2p.testing.simulator.service import ApiRequest, ApiResponse, SimulatedGitHub

__all__ = ["GitHubSimulator"]

_log = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections, so stop() can end them."""

    daemon_threads = True
    # Fleets open many connections at once; the default backlog of 5 drops SYNs under load.
    request_queue_size = 128

    def __init__(
        self, config: SimulatorConfig, service: SimulatedGitHub, clock: Callable[[], float],
        oidc: OidcProvider,
    ) -> None:
        self.service = service
        self.oidc = oidc
        self.clock = clock
        self.config = config
        self.base_url = ""
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((config.host, config.port), _Handler)
        if config.ssl_context is not None:
            # The handshake happens in the connection's own thread, not in the accept loop.
            self.socket = config.ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (socket.getfqdn), which can stall.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request are normal for a test server; keep stderr quiet.
        _log.debug("simulator connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"
    # Buffer the response so headers and body leave in one send (no Nagle/delayed-ACK stall).
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    @property
    def _server(self) -> _Server:
        return cast(_Server, self.server)

    def setup(self) -> None:
        # Idle keep-alive connections end after a while instead of holding a thread for ever.
        self.request.settimeout(self._server.config.idle_timeout)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()
        self._server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._server.untrack(self.connection)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("simulator: " + format, *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self._server.clock() if timestamp is None else timestamp, usegmt=True)

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes | None:
        if "transfer-encoding" in self.headers:
            self._write_plain(411, {"message": "Length Required"})
            return None
        try:
            length = int(self.headers.get("content-length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._write_plain(400, {"message": "Bad Content-Length"})
            return None
        if length > self._server.config.max_request_body:
            self._write_plain(413, {"message": "Payload Too Large"})
            return None
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        server = self._server
        if self.path.startswith(CONTROL_PREFIX + "/"):
            status, answer = handle_control(server.service, self.command, self.path, body,
                                            oidc=server.oidc, base_url=server.base_url)
            self._write_plain(status, answer, close=False)
            return
        if server.oidc.handles(self.path.split("?", 1)[0]):
            # GitHub's OIDC issuer and the Actions runtime: not API calls, never recorded.
            status, headers, payload = server.oidc.handle(
                self.command, self.path,
                {name.lower(): value for name, value in self.headers.items()}, server.base_url)
            self._write(ApiResponse(status, tuple(headers.items()), payload))
            return
        latency = server.service.latency
        if latency > 0:
            time.sleep(latency)
        request = ApiRequest(
            method=self.command,
            target=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            client=str(self.client_address[0]),
        )
        self._write(server.service.handle(request, server.base_url))

    def _write(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _write_plain(self, status: int, payload: Any, *, close: bool = True) -> None:
        body = json.dumps(payload).encode()
        headers = [("content-type", "application/json; charset=utf-8")]
        if close:
            self.close_connection = True
            headers.append(("connection", "close"))
        self._write(ApiResponse(status, tuple(headers), body))


class GitHubSimulator:
    """A fake GitHub REST API on loopback, for tests, the demo and benchmarks.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`); :attr:`url` is the
    base URL to put in ``GITHUB_API_URL``. ``clock`` gives epoch seconds for rate-limit windows,
    ``Last-Modified`` dates and record timestamps; ``private_key`` is the Curve25519 key Actions
    secrets are sealed to (a fresh one when not given).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        private_key: PrivateKey | None = None,
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self._clock = clock
        key = private_key if private_key is not None else PrivateKey.generate()
        self._service = SimulatedGitHub(self.config, clock=clock, private_key=key)
        #: GitHub Actions' OIDC issuer and token endpoint (see :mod:`.oidc`).
        self.oidc = OidcProvider(clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> GitHubSimulator:
        """Bind, listen and serve in a background thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        server = _Server(self.config, self._service, self._clock, self.oidc)
        host = self.config.host if self.config.host not in ("", "0.0.0.0") else "127.0.0.1"
        scheme = "https" if self.config.ssl_context is not None else "http"
        server.base_url = f"{scheme}://{host}:{server.server_port}"
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"github-simulator-{server.server_port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join(timeout=5)

    def __enter__(self) -> GitHubSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with an SSL context); only while running."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.base_url

    @property
    def port(self) -> int:
        """The port the simulator listens on; only while running."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        return self._server.server_port

    # --- records --------------------------------------------------------------------------------

    def records(self) -> list[RequestRecord]:
        """Every API request served, in order (control-plane calls excluded)."""
        return self._service.records()

    def upstream_count(
        self, path: str | None = None, method: str | None = "GET", counted_only: bool = False
    ) -> int:
        """How many recorded requests match ``path`` (exact, no query) and ``method``.

        ``None`` matches any path or method; ``counted_only`` keeps the requests that spent
        primary rate-limit budget.
        """
        return count_records(self._service.records(), path, method, counted_only)

    def reset_records(self) -> None:
        """Forget the recorded requests."""
        self._service.reset_records()

    def reset_rate_limits(self) -> None:
        """Refill every rate-limit budget."""
        self._service.reset_rate_limits()

    # --- steering -------------------------------------------------------------------------------

    def set_resource(self, path: str, body: Any) -> None:
        """Create or change the resource at ``path`` (new ETag and ``Last-Modified``).

        A list body is served like a GitHub list (paginated, no ``Last-Modified``).
        """
        self._service.set_resource(path, body)

    def fail_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` API requests answer ``status`` (a 5xx; not counted)."""
        self._service.fail_next(count, status)

    def secondary_limit_next(self, count: int, retry_after: int | None = 1,
                             status: int = 403) -> None:
        """The next ``count`` API requests hit a secondary rate limit with ``retry-after``
        (``None``: without one, as GitHub sometimes answers)."""
        self._service.secondary_limit_next(count, retry_after, status)

    def clear_faults(self) -> None:
        """Drop injected faults that have not fired yet."""
        self._service.clear_faults()

    def set_latency(self, seconds: float) -> None:
        """Delay every later API request by ``seconds``."""
        self._service.set_latency(seconds)

    @property
    def latency(self) -> float:
        """The current per-request latency in seconds."""
        return self._service.latency

    # --- GitHub Actions OIDC -------------------------------------------------------------------

    @property
    def oidc_issuer(self) -> str:
        """The OIDC issuer URL to trust (``github-p2p bootstrap --oidc-issuer``)."""
        return self.oidc.issuer(self.url)

    def oidc_job(self, repository: str, **options: Any) -> dict[str, str]:
        """A job of ``repository`` with ``id-token: write``: the ``ACTIONS_ID_TOKEN_REQUEST_*``
        environment its runner gets. ``options``: see :class:`~.oidc.OidcJob`."""
        return self.oidc.job(self.url, repository, **options)

    # --- Actions secrets ------------------------------------------------------------------------

    @property
    def public_key(self) -> tuple[str, str]:
        """``(key_id, base64 Curve25519 public key)`` that secrets are sealed to."""
        return self._service.public_key

    def secret_value(self, repo: str, name: str) -> str | None:
        """The decrypted value of secret ``name`` of ``owner/repo``, or ``None``."""
        return self._service.secret_value(repo, name)
