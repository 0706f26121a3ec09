"""A runner's GitHub Actions OIDC token, requested from the Actions runtime for the hub.

A job with ``permissions: id-token: write`` gets ``ACTIONS_ID_TOKEN_REQUEST_URL`` (with
``?api-version=2.0`` already in it) and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``. The runner's daemon
asks ``{url}&audience={GITHUB_P2P_OIDC_AUDIENCE}`` with ``Authorization: Bearer {request
token}`` and gets ``{"value": "<jwt>"}``: a token, valid for minutes, that names the job's
repository. The daemon presents it in its ``Hello`` to a hub started with ``--oidc-audience``,
and asks for a new one when the one it holds is about to expire (a link that reconnects later).

Neither token is ever logged or put in an error message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

import jwt
import requests

from github_p2p.errors import AdmissionError

__all__ = ["OidcRequest", "OidcTokenSource"]


@dataclass(frozen=True)
class OidcRequest:
    """What a runner needs to ask the Actions runtime for an ID token."""

    audience: str
    request_url: str
    request_token: str = field(repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> tuple[OidcRequest | None, str | None]:
        """The request ``env`` allows, and a warning when it is asked for but impossible."""
        audience = env.get("GITHUB_P2P_OIDC_AUDIENCE", "").strip()
        if not audience:
            return None, None
        url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
        token = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
        if not url or not token:
            return None, ("GITHUB_P2P_OIDC_AUDIENCE is set but this job cannot request an "
                          "OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are missing: give "
                          "the job permissions: id-token: write); hubs that require one will "
                          "refuse this runner")
        return cls(audience, url, token), None


class OidcTokenSource:
    """Fetches the job's ID token and keeps it until ``renew_before`` s before it expires."""

    def __init__(self, request: OidcRequest, *, clock: Callable[[], float] = time.time,
                 renew_before: float = 60.0, timeout: float = 10.0) -> None:
        self.request = request
        self._clock = clock
        self._renew_before = renew_before
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        #: Tokens fetched from the runtime.
        self.fetched = 0

    def token(self, *, fresh: bool = False) -> str:
        """The current token (blocking); a new one when asked or when it is about to expire.

        Raises :class:`~github_p2p.errors.AdmissionError` when the runtime gives none.
        """
        with self._lock:
            if not fresh and self._token is not None \
                    and self._clock() < self._expires_at - self._renew_before:
                return self._token
            token = self._fetch()
            try:
                claims = jwt.decode(token, options={"verify_signature": False})
                expires_at = float(claims["exp"])
            except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
                raise AdmissionError("the Actions runtime answered something that is not an "
                                     "ID token") from exc
            self._token, self._expires_at = token, expires_at
            self.fetched += 1
            return token

    def _fetch(self) -> str:
        request = self.request
        separator = "&" if "?" in request.request_url else "?"
        url = f"{request.request_url}{separator}audience={quote(request.audience, safe='')}"
        try:
            resp = requests.get(url, timeout=self._timeout, headers={
                "Authorization": f"Bearer {request.request_token}",
                "Accept": "application/json; api-version=2.0"})
        except requests.RequestException as exc:
            raise AdmissionError(f"cannot reach the Actions runtime for an OIDC token: "
                                 f"{type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise AdmissionError(f"the Actions runtime refused an OIDC token: HTTP "
                                 f"{resp.status_code}")
        try:
            value = resp.json().get("value")
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise AdmissionError("the Actions runtime's answer holds no OIDC token")
        return value
