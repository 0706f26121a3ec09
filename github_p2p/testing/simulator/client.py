"""Steer a simulator running in another process through its ``/_simulator`` control plane."""

from __future__ import annotations

from typing import Any

import requests

from github_p2p.errors import ConfigError, UpstreamUnavailableError
from github_p2p.testing.simulator.records import RequestRecord, count_records

__all__ = ["SimulatorClient"]


class SimulatorClient:
    """The :class:`~github_p2p.testing.simulator.GitHubSimulator` steering API, over HTTP.

    ``url`` is the simulator's base URL (what ``python -m github_p2p.testing.simulator`` prints);
    ``verify`` is passed to requests (a CA bundle path for an HTTPS simulator).
    """

    def __init__(self, url: str, *, timeout: float = 10.0, verify: bool | str = True) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._verify = verify
        self._session = requests.Session()

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def _call(self, method: str, route: str, payload: dict[str, Any] | None = None) -> Any:
        try:
            response = self._session.request(
                method,
                f"{self.url}/_simulator{route}",
                json=payload,
                timeout=self._timeout,
                # Per request: REQUESTS_CA_BUNDLE in the environment would override Session.verify.
                verify=self._verify,
            )
        except requests.RequestException as exc:
            raise UpstreamUnavailableError(f"simulator at {self.url} unreachable") from exc
        if response.status_code != 200:
            raise ConfigError(f"simulator refused {route}: {response.text}")
        return response.json()

    def health(self) -> bool:
        """Whether the simulator answers."""
        try:
            return bool(self._call("GET", "/health").get("ok"))
        except UpstreamUnavailableError:
            return False

    def records(self) -> list[RequestRecord]:
        """Every API request the simulator served, in order."""
        return [RequestRecord.from_json(item) for item in self._call("GET", "/requests")]

    def upstream_count(
        self, path: str | None = None, method: str | None = "GET", counted_only: bool = False
    ) -> int:
        """Same as :meth:`GitHubSimulator.upstream_count`."""
        return count_records(self.records(), path, method, counted_only)

    def reset_records(self) -> None:
        """Forget the recorded requests."""
        self._call("POST", "/reset", {"records": True})

    def reset_rate_limits(self) -> None:
        """Refill every rate-limit budget."""
        self._call("POST", "/reset", {"records": False, "rate_limits": True})

    def clear_faults(self) -> None:
        """Drop injected faults that have not fired yet."""
        self._call("POST", "/reset", {"records": False, "faults": True})

    def set_resource(self, path: str, body: Any) -> None:
        """Create or change the resource at ``path``."""
        self._call("POST", "/resources", {"path": path, "body": body})

    def fail_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` API requests answer ``status``."""
        self._call("POST", "/faults", {"kind": "5xx", "count": count, "status": status})

    def secondary_limit_next(self, count: int, retry_after: int = 1, status: int = 403) -> None:
        """The next ``count`` API requests hit a secondary rate limit."""
        self._call(
            "POST",
            "/faults",
            {"kind": "secondary", "count": count, "retry_after": retry_after, "status": status},
        )

    def set_latency(self, seconds: float) -> None:
        """Delay every later API request by ``seconds``."""
        self._call("POST", "/latency", {"seconds": seconds})

    def oidc_job(self, repository: str, lifetime: float = 300.0) -> dict[str, str]:
        """Register an Actions job of ``repository``: its runner's ``ACTIONS_ID_TOKEN_*``
        environment (the issuer is ``{url}/_services/token``)."""
        env: dict[str, str] = self._call("POST", "/oidc/jobs",
                                         {"repository": repository, "lifetime": lifetime})
        return env
