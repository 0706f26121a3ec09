"""The gh wrapper's side of sharing command outputs through the runner's daemon (see
:mod:`github_p2p.nodes.outputs`): claim an output or the go-ahead to run gh, fill it, give a
lease back, forget them all after a write."""

from __future__ import annotations

from types import TracebackType

import requests

from github_p2p.cache.driver import CONTROL_HEADER
from github_p2p.errors import FleetUnavailableError

__all__ = ["OutputShare"]

_LEASE_HEADER = "x-github-p2p-lease"


class OutputShare:
    """``/_p2p/outputs/*`` of the daemon at ``endpoint``; failures raise
    :class:`~github_p2p.errors.FleetUnavailableError` (the wrapper then keeps outputs locally).

    ``timeout`` must cover the daemon's wait for another runner's fill.
    """

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # loopback: no proxies, no netrc

    def __enter__(self) -> OutputShare:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._session.close()

    def _post(self, route: str, params: dict[str, str], body: bytes = b""
              ) -> requests.Response:
        try:
            resp = self._session.post(f"{self.endpoint}/_p2p/outputs/{route}", params=params,
                                      data=body, headers={CONTROL_HEADER: "1"},
                                      timeout=self._timeout)
        except requests.RequestException as exc:
            raise FleetUnavailableError(f"the github-p2p daemon at {self.endpoint} is "
                                        f"unreachable: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise FleetUnavailableError(f"the github-p2p daemon refused {route}: "
                                        f"HTTP {resp.status_code}")
        return resp

    @staticmethod
    def _params(name: str, ttl: float, private: bool) -> dict[str, str]:
        params = {"name": name, "ttl": f"{ttl:g}"}
        if private:
            params["private"] = "1"
        return params

    def claim(self, name: str, ttl: float, private: bool) -> tuple[bytes | None, str | None]:
        """The kept output (``None``: run gh) and the fill lease this runner holds, if any."""
        resp = self._post("claim", self._params(name, ttl, private))
        if resp.status_code == 200:
            return resp.content, None
        return None, resp.headers.get(_LEASE_HEADER)

    def fill(self, name: str, ttl: float, private: bool, output: bytes,
             lease: str | None) -> None:
        """Keep and share gh's output."""
        params = self._params(name, ttl, private)
        if lease:
            params["lease"] = lease
        self._post("fill", params, output)

    def release(self, name: str, lease: str) -> None:
        """gh failed: give the lease back so the others do not wait it out."""
        self._post("release", {"name": name, "lease": lease})

    def forget(self) -> None:
        """A command may have written: forget every output here and fleet-wide."""
        self._post("forget", {})
