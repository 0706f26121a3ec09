"""GitHub Actions' OIDC provider and the runtime's token endpoint, as the simulator serves them.

Two services GitHub runs besides its REST API:

* the **issuer** (``https://token.actions.githubusercontent.com``; on GHES
  ``https://HOSTNAME/_services/token``): an OpenID discovery document at
  ``{issuer}/.well-known/openid-configuration`` whose ``jwks_uri`` lists the public keys (RSA,
  ``RS256``) that sign ID tokens. Here the issuer is ``{base}/_services/token``;
* the **runtime's token request endpoint**: a job with ``permissions: id-token: write`` gets
  ``ACTIONS_ID_TOKEN_REQUEST_URL`` (already carrying ``?api-version=2.0``) and
  ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; ``GET {url}&audience=AUD`` with
  ``Authorization: Bearer {request token}`` answers ``{"value": "<jwt>"}``, a token whose
  claims describe that job (``repository``, ``run_id``, ``sub``, ...) for that audience.

A test registers a job with :meth:`OidcProvider.job` and hands the environment it returns to a
runner. Knobs make the refusals a verifier must give: a token already expired, one signed with a
key the issuer does not publish, one naming another issuer. :meth:`OidcProvider.rotate` adds a
new signing key (the old one stays published), as GitHub does when it rotates.

Nothing here is an API call: it is never recorded, rate-limited or delayed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["ISSUER_PATH", "RUNTIME_PATH", "OidcJob", "OidcProvider"]

#: Where the issuer lives under the simulator's base URL (GHES's path).
ISSUER_PATH = "/_services/token"
#: The runtime's ID-token request endpoint.
RUNTIME_PATH = "/_apis/actions/idtoken"
_JWKS_PATH = ISSUER_PATH + "/.well-known/jwks"
_DISCOVERY_PATH = ISSUER_PATH + "/.well-known/openid-configuration"
_CLAIMS = [
    "sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "sha", "repository",
    "repository_id", "repository_owner", "repository_owner_id", "run_id", "run_number",
    "run_attempt", "actor", "actor_id", "workflow", "workflow_ref", "event_name", "ref_type",
    "job_workflow_ref", "runner_environment", "repository_visibility",
]

Reply = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class OidcJob:
    """What the runtime knows about one job, and how its tokens should come out.

    ``lifetime`` is seconds from issue to expiry (negative: already expired). ``foreign_key``
    signs with a key the issuer never publishes; ``issuer`` overrides the ``iss`` claim.
    """

    repository: str
    run_id: int
    lifetime: float = 300.0
    foreign_key: bool = False
    issuer: str | None = None


def _repository_id(repository: str) -> int:
    return int.from_bytes(hashlib.sha256(repository.encode()).digest()[:4], "big")


class _SigningKey:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        digest = hashlib.sha256(f'{{"e":"{jwk["e"]}","kty":"RSA","n":"{jwk["n"]}"}}'.encode())
        self.kid = base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
        self.jwk = {**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}


class OidcProvider:
    """The issuer and the token endpoint; RSA keys are made on first use (~0.1 s each)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[_SigningKey] = []
        self._foreign: _SigningKey | None = None
        self._jobs: dict[str, OidcJob] = {}
        self._next_run = 7_000_000_000
        #: Tokens handed out, and JWKS documents served (tests check key caching with it).
        self.tokens_issued = 0
        self.jwks_served = 0

    def _signing(self) -> _SigningKey:
        with self._lock:
            if not self._keys:
                self._keys.append(_SigningKey())
            return self._keys[-1]

    def rotate(self) -> str:
        """Sign from now on with a new key (the old one stays published); its ``kid``."""
        key = _SigningKey()
        with self._lock:
            self._keys.append(key)
        return key.kid

    def issuer(self, base_url: str) -> str:
        """The issuer URL for a simulator at ``base_url`` (``--oidc-issuer``)."""
        return base_url + ISSUER_PATH

    def job(self, base_url: str, repository: str, **options: Any) -> dict[str, str]:
        """Register a job of ``repository``; the environment its runner gets from Actions."""
        request_token = "oidc-request-" + secrets.token_hex(16)
        with self._lock:
            self._next_run += 1
            self._jobs[request_token] = OidcJob(repository, self._next_run, **options)
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{base_url}{RUNTIME_PATH}?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token}

    def handles(self, path: str) -> bool:
        """Whether ``path`` (no query) is one of ours."""
        return path in (_DISCOVERY_PATH, _JWKS_PATH, RUNTIME_PATH)

    def handle(self, method: str, target: str, headers: dict[str, str],
               base_url: str) -> Reply:
        """Answer a request for one of our paths: ``(status, headers, body)``."""
        path, _, query = target.partition("?")
        if method not in ("GET", "HEAD"):
            return _json(405, {"message": "Method Not Allowed"})
        if path == _DISCOVERY_PATH:
            issuer = self.issuer(base_url)
            return _json(200, {
                "issuer": issuer, "jwks_uri": base_url + _JWKS_PATH,
                "subject_types_supported": ["public", "pairwise"],
                "response_types_supported": ["id_token"], "claims_supported": _CLAIMS,
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid"]})
        if path == _JWKS_PATH:
            self._signing()
            with self._lock:
                self.jwks_served += 1
                return _json(200, {"keys": [key.jwk for key in self._keys]})
        return self._token(query, headers, base_url)

    def _token(self, query: str, headers: dict[str, str], base_url: str) -> Reply:
        scheme, _, request_token = headers.get("authorization", "").partition(" ")
        with self._lock:
            job = self._jobs.get(request_token.strip()) if scheme.lower() == "bearer" else None
        if job is None:
            return _json(401, {"message": "Unauthorized"})
        params = dict(parse_qsl(query, keep_blank_values=True))
        if params.get("api-version") != "2.0":
            return _json(400, {"message": "api-version 2.0 is required"})
        owner = job.repository.split("/")[0]
        # Without an audience GitHub uses the owner's URL.
        audience = params.get("audience") or f"https://github.com/{owner}"
        now = int(self._clock())
        claims = {
            "jti": secrets.token_hex(16), "sub": f"repo:{job.repository}:ref:refs/heads/main",
            "aud": audience, "ref": "refs/heads/main", "sha": "a" * 40,
            "repository": job.repository, "repository_owner": owner,
            "repository_id": str(_repository_id(job.repository)),
            "repository_owner_id": str(_repository_id(owner)),
            "repository_visibility": "private", "run_id": str(job.run_id), "run_number": "1",
            "run_attempt": "1", "actor": "octocat", "actor_id": "583231", "workflow": "CI",
            "workflow_ref": f"{job.repository}/.github/workflows/ci.yml@refs/heads/main",
            "job_workflow_ref": f"{job.repository}/.github/workflows/ci.yml@refs/heads/main",
            "event_name": "push", "ref_type": "branch", "runner_environment": "github-hosted",
            "iss": job.issuer or self.issuer(base_url),
            "nbf": now - 600, "iat": now, "exp": int(now + job.lifetime),
        }
        key = self._signing()
        if job.foreign_key:
            with self._lock:
                if self._foreign is None:
                    self._foreign = _SigningKey()
                foreign = self._foreign
            # Another key under the published kid: only the signature gives it away.
            token = jwt.encode(claims, foreign.private, algorithm="RS256",
                               headers={"kid": key.kid})
        else:
            token = jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})
        with self._lock:
            self.tokens_issued += 1
        return _json(200, {"value": token})


def _json(status: int, payload: Any) -> Reply:
    return status, {"content-type": "application/json; charset=utf-8"}, \
        json.dumps(payload).encode()
