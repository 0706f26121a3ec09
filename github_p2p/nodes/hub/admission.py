"""Who may use a hub, and what each connection may touch: GitHub Actions OIDC admission.

Without ``--oidc-audience`` a hub serves every member of the private network alike: one secret,
one trust domain. With it, a stream is served only after its ``Hello`` carries a GitHub Actions
OIDC token that :class:`OidcVerifier` accepts (signature against the issuer's published keys,
issuer, audience, expiry), and the stream is then bound to the token's ``repository`` claim:

* every id the stream names (an entry id, a resource tag, an id to delete or lease) is mapped
  into that repository's space, ``HMAC(scope key, id)``, where the *scope key* is
  ``HMAC(network key, "github-p2p/v1/scope|" + repository)``; the hub computes it itself from
  the verified claim, so no runner can choose it;
* so a stream admitted for ``o/other`` reads, writes, leases, releases and deletes only
  ``o/other``'s entries (and uses only ``o/other``'s work queues), even when its runner
  holds the fleet secret and seals with ``o/r``'s keys: the same entry id lands somewhere
  else. Replies carry the ids the runner sent.

:class:`HubAdmission` is what the hub service holds; :meth:`HubAdmission.gate` gives each stream
its :class:`StreamGate`. Verification does blocking I/O (the issuer's discovery document and
JWKS, fetched once and cached; refetched for an unknown key id, at most every
:data:`KEY_REFRESH_COOLDOWN` seconds) and runs in a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
import trio

from github_p2p.core.loopback import is_loopback_host
from github_p2p.core.ratelimit import limits_under
from github_p2p.errors import AdmissionError, ConfigError
from github_p2p.p2p.messages import (
    Delete,
    Entry,
    Error,
    Get,
    Hello,
    Lease,
    LeaseReply,
    NotFound,
    Put,
    Release,
    Request,
    Response,
)
from github_p2p.p2p.queue_messages import QUEUE_REQUEST_TYPES

__all__ = [
    "GITHUB_ISSUER",
    "KEY_REFRESH_COOLDOWN",
    "Admission",
    "HubAdmission",
    "OidcSettings",
    "OidcVerifier",
    "StreamGate",
    "scope_key",
]

log = logging.getLogger(__name__)

#: GitHub Actions' OIDC issuer.
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
#: Shortest time between two JWKS fetches caused by tokens naming an unknown key.
KEY_REFRESH_COOLDOWN = 30.0
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}")
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "repository"]


@dataclass(frozen=True)
class OidcSettings:
    """``--oidc-audience`` and ``--oidc-issuer``, and the verifier's bounds."""

    audience: str
    issuer: str = GITHUB_ISSUER
    #: Clock skew allowed on ``exp``, ``iat`` and ``nbf`` (seconds).
    leeway: float = 30.0
    #: Bound on fetching the discovery document or the keys (seconds).
    fetch_timeout: float = 10.0
    #: Token verifications at once (each may wait on the issuer).
    max_concurrent: int = 4

    def __post_init__(self) -> None:
        audience = self.audience
        if not isinstance(audience, str) or not 0 < len(audience) <= 256 \
                or not audience.isprintable() or audience != audience.strip():
            raise ConfigError("--oidc-audience must be 1..256 printable characters")
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query \
                or parts.fragment or self.issuer.endswith("/"):
            raise ConfigError(f"--oidc-issuer must be an https URL without a trailing slash, "
                              f"not {self.issuer!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError("--oidc-issuer must use https (http only for a loopback host)")
        for name in ("leeway", "fetch_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"OIDC {name} must be a non-negative number of seconds")
        if self.max_concurrent < 1:
            raise ConfigError("OIDC max_concurrent must be at least 1")


@dataclass(frozen=True)
class Admission:
    """A verified token: the repository a stream is bound to, and what the dashboard shows."""

    repository: str
    subject: str
    run_id: str
    expires_at: float


class OidcVerifier:
    """Verifies GitHub Actions OIDC tokens against the issuer's published keys (blocking)."""

    def __init__(self, settings: OidcSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._jwks: jwt.PyJWKClient | None = None
        self._last_refresh = -math.inf
        #: Fetches of the issuer's discovery document and keys (for the hub's statistics).
        self.fetches = 0

    def prepare(self) -> None:
        """Fetch the discovery document and the keys now; :class:`AdmissionError` if not."""
        self._keys(refresh=False)

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is not None:
                return self._jwks
            issuer = self.settings.issuer
            url = issuer + "/.well-known/openid-configuration"
            try:
                resp = requests.get(url, timeout=self.settings.fetch_timeout,
                                    allow_redirects=False)
                self.fetches += 1
                resp.raise_for_status()
                document = resp.json()
            except (requests.RequestException, ValueError) as exc:
                raise AdmissionError(f"the hub cannot read its OIDC issuer's discovery "
                                     f"document {url}: {type(exc).__name__}") from exc
            if not isinstance(document, dict) or document.get("issuer") != issuer:
                raise AdmissionError(f"the discovery document at {url} names another issuer")
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("https",
                                                                                "http"):
                raise AdmissionError(f"the discovery document at {url} has no usable jwks_uri")
            # Keys rotate rarely and unknown key ids trigger a refresh: an hour is plenty.
            self._jwks = jwt.PyJWKClient(jwks_uri, cache_jwk_set=True, lifespan=3600,
                                         timeout=int(max(1, self.settings.fetch_timeout)))
            return self._jwks

    def _keys(self, *, refresh: bool) -> Mapping[str, Any]:
        client = self._client()
        try:
            keys = client.get_signing_keys(refresh=refresh)
        except jwt.PyJWTError as exc:  # unreachable, not JSON, no usable key
            raise AdmissionError(f"the hub cannot fetch its OIDC issuer's keys: {exc}") from exc
        with self._lock:
            self.fetches += int(refresh)
        return {key.key_id: key for key in keys if key.key_id}

    def _signing_key(self, kid: str) -> Any:
        keys = self._keys(refresh=False)
        if kid not in keys:
            now = self._clock()
            with self._lock:
                # A rotated key is fetched at once; a flood of made-up key ids is not.
                allowed = now - self._last_refresh >= KEY_REFRESH_COOLDOWN
                if allowed:
                    self._last_refresh = now
            if allowed:
                keys = self._keys(refresh=True)
        if kid not in keys:
            raise AdmissionError("the token is signed with a key the issuer does not publish")
        return keys[kid].key

    def verify(self, token: str) -> Admission:
        """The admission ``token`` grants; :class:`AdmissionError` saying why not."""
        settings = self.settings
        try:
            header = jwt.get_unverified_header(token)
            # Read without trusting, only to refuse early (and say why) without any fetch.
            claimed = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AdmissionError("the token is not a JWT") from exc
        if header.get("alg") != "RS256":
            raise AdmissionError("the token is not signed with RS256")
        if claimed.get("iss") != settings.issuer:
            raise AdmissionError(f"the token is from another issuer (this hub trusts "
                                 f"{settings.issuer})")
        audiences = claimed.get("aud")
        if settings.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise AdmissionError(f"the token is for another audience (this hub admits "
                                 f"{settings.audience!r})")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AdmissionError("the token names no signing key")
        key = self._signing_key(kid)
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], audience=settings.audience,
                                issuer=settings.issuer, leeway=settings.leeway,
                                options={"require": _REQUIRED_CLAIMS})
        except jwt.ExpiredSignatureError as exc:
            raise AdmissionError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AdmissionError("the token is not valid yet") from exc
        except jwt.InvalidSignatureError as exc:
            raise AdmissionError("the token's signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AdmissionError(f"the token has no {exc.claim} claim") from exc
        except jwt.PyJWTError as exc:
            raise AdmissionError(f"the token is invalid: {type(exc).__name__}") from exc
        repository = claims.get("repository")
        if not isinstance(repository, str) or not _REPOSITORY.fullmatch(repository):
            raise AdmissionError("the token's repository claim is not owner/repo")
        return Admission(repository, str(claims.get("sub", ""))[:200],
                         str(claims.get("run_id", ""))[:32], float(claims["exp"]))


def scope_key(network_key: bytes, repository: str) -> bytes:
    """The key a repository's ids are mapped with: only the hub (network key) computes it."""
    return hmac.new(network_key, b"github-p2p/v1/scope|" + repository.lower().encode(),
                    hashlib.sha256).digest()


class HubAdmission:
    """The hub's admission policy: open (no audience) or OIDC-bound streams."""

    def __init__(self, settings: OidcSettings | None, network_key: bytes | None, *,
                 verifier: OidcVerifier | None = None) -> None:
        if settings is not None and network_key is None:
            raise ConfigError("OIDC admission needs the hub's network key")
        self.settings = settings
        self._network_key = network_key or b""
        self.verifier = verifier or (OidcVerifier(settings) if settings is not None else None)
        self._verifying = trio.CapacityLimiter(settings.max_concurrent if settings else 1)
        self.counts = {"admitted": 0, "refused": 0}

    @property
    def required(self) -> bool:
        """Whether streams must present a token."""
        return self.settings is not None

    def gate(self) -> StreamGate:
        """The admission state of a new stream."""
        return StreamGate(self)

    async def verify(self, token: str | None) -> Admission:
        """Verify in a worker thread; :class:`AdmissionError` saying why not."""
        verifier = self.verifier
        assert verifier is not None
        if token is None:
            raise AdmissionError("this hub admits runners with a GitHub Actions OIDC token "
                                 f"for audience {verifier.settings.audience!r} only, and none "
                                 "was presented (set GITHUB_P2P_OIDC_AUDIENCE and give the job "
                                 "permissions: id-token: write)")
        async with self._verifying:
            # The issuer may be slow; a cancelled wait leaves the thread to finish on its own.
            admission: Admission = await trio.to_thread.run_sync(  # type: ignore[call-arg]
                verifier.verify, token, abandon_on_cancel=True)
        return admission

    def mapper(self, repository: str) -> Callable[[bytes], bytes]:
        """How ids of a stream bound to ``repository`` are mapped."""
        key = scope_key(self._network_key, repository)
        return lambda ident: hmac.new(key, ident, hashlib.sha256).digest()

    def limit_prefix(self, repository: str) -> str:
        """The prefix of the rate-limit keys of ``repository`` (:meth:`StreamGate.limit_key`)."""
        return self.mapper(repository)(b"rate-limits").hex()[:16] + ":"


class StreamGate:
    """One stream's admission: nothing but ``Hello`` until admitted, then its scope's ids."""

    def __init__(self, policy: HubAdmission) -> None:
        self._policy = policy
        self.admission: Admission | None = None
        #: A Hello was refused: the stream is closed (cleanly, so the reason gets through).
        self.refused = False
        self._map: Callable[[bytes], bytes] | None = None
        self._prefix: str | None = None

    @property
    def open(self) -> bool:
        """Whether requests other than ``Hello`` are served."""
        return not self._policy.required or self.admission is not None

    async def check(self, message: Request) -> Error | None:
        """``None`` when ``message`` may be answered, else the :class:`Error` to answer.

        A ``Hello`` on an OIDC hub is admitted here (the first accepted one binds the stream;
        a later one must name the same repository).
        """
        policy = self._policy
        if not policy.required:
            return None
        if isinstance(message, Hello):
            try:
                admission = await policy.verify(message.token)
            except AdmissionError as exc:
                policy.counts["refused"] += 1
                self.refused = True
                log.info("refused a runner: %s", exc)
                return Error(message.rid, "unauthorized", str(exc)[:1024])
            if self.admission is not None and admission.repository != self.admission.repository:
                policy.counts["refused"] += 1
                self.refused = True
                return Error(message.rid, "unauthorized",
                             "this stream is bound to another repository")
            if self.admission is None:
                policy.counts["admitted"] += 1
                self._map = policy.mapper(admission.repository)
                self._prefix = policy.limit_prefix(admission.repository)
            self.admission = admission
            return None
        if self.admission is None:
            return Error(getattr(message, "rid", 0), "unauthorized",
                         "send a Hello with a GitHub Actions OIDC token first")
        return None

    def inbound(self, message: Request) -> Request:
        """``message`` with its ids mapped into the stream's repository space."""
        mapping = self._map
        if mapping is None:
            return message
        if isinstance(message, Put):
            return dataclasses.replace(
                message, entry_id=mapping(message.entry_id),
                tag=mapping(message.tag) if message.tag is not None else None)
        if isinstance(message, Get | Delete | Lease | Release):
            return dataclasses.replace(message, entry_id=mapping(message.entry_id))
        if isinstance(message, QUEUE_REQUEST_TYPES):
            # A work queue of the repository's run, not another repository's.
            return dataclasses.replace(message, queue_id=mapping(message.queue_id))
        return message

    def outbound(self, reply: Response, request: Request) -> Response:
        """``reply`` with the ids the runner sent (it never sees the mapped ones)."""
        if self._map is None or not isinstance(reply, Entry | NotFound | LeaseReply):
            return reply
        original = getattr(request, "entry_id", reply.entry_id)
        return dataclasses.replace(reply, entry_id=original)

    def limit_key(self, resource: str) -> str:
        """The key a rate limit this stream reports is kept under: per repository on an OIDC
        hub (a repository's ``GITHUB_TOKEN`` budget is its own, and another repository's
        runner must not hold it back)."""
        return resource if self._prefix is None else self._prefix + resource

    def visible_limits(self, limits: Mapping[str, float]) -> dict[str, float]:
        """The rate limits this stream is told about, under the names it reported them."""
        return limits_under(self._prefix or "", limits)

    def sees(self, peer_repository: str) -> bool:
        """Whether this stream may see a peer bound to ``peer_repository`` in a peer list."""
        return self.admission is None or peer_repository == self.admission.repository

