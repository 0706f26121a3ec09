"""Settings, read once at the edge from the environment (the reading itself is pure: it takes
a mapping, so tests pass their own)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from github_p2p.core.ratelimit import RetrySettings
from github_p2p.errors import ConfigError

__all__ = [
    "DEFAULT_API_URL",
    "ClientSettings",
    "SecretResolution",
    "default_cache_dir",
    "hub_network_key",
    "resolve_secret",
    "token_fingerprint",
]

DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class SecretResolution:
    """Where the fleet secret came from, and what the user should be told about it."""

    secret: str | None = field(repr=False)
    source: str
    warning: str | None = None


def resolve_secret(env: Mapping[str, str]) -> SecretResolution:
    """``GITHUB_P2P_SECRET``, else ``GH_TOKEN``/``GITHUB_TOKEN`` with a warning.

    A per-job Actions token (``ghs_``) as the fleet secret means every job has its own fleet
    key, so nothing is shared between jobs: that deserves a loud warning.
    """
    secret = env.get("GITHUB_P2P_SECRET", "").strip()
    if secret:
        return SecretResolution(secret, "GITHUB_P2P_SECRET")
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        token = env.get(name, "").strip()
        if token:
            warning = (
                f"GITHUB_P2P_SECRET is not set; using {name} as the fleet secret."
                " Set GITHUB_P2P_SECRET so that every runner shares one key."
            )
            if token.startswith("ghs_"):
                warning = (
                    f"GITHUB_P2P_SECRET is not set and {name} is a per-job Actions token:"
                    " each job gets its own fleet key and nothing is shared across jobs."
                    " Set GITHUB_P2P_SECRET to a shared secret."
                )
            return SecretResolution(token, name, warning)
    return SecretResolution(None, "none", "no fleet secret: the fleet cache is disabled")


def hub_network_key(env: Mapping[str, str]) -> bytes:
    """The hub's libp2p network key: ``GITHUB_P2P_NETWORK_KEY`` (64 hex characters: a blind
    hub), else derived from ``GITHUB_P2P_SECRET``. Raises :class:`ConfigError` when neither is
    usable."""
    from github_p2p.core.keys import derive_network_key

    explicit = env.get("GITHUB_P2P_NETWORK_KEY", "").strip()
    if explicit:
        try:
            key = bytes.fromhex(explicit)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError("GITHUB_P2P_NETWORK_KEY must be 64 hex characters")
        return key
    secret = env.get("GITHUB_P2P_SECRET", "").strip()
    if not secret:
        raise ConfigError("set GITHUB_P2P_SECRET (or GITHUB_P2P_NETWORK_KEY) for the hub")
    return derive_network_key(secret)


def token_fingerprint(token: str) -> str:
    """A short one-way fingerprint of a token, to remember which token owns an ETag."""
    return hashlib.sha256(b"github-p2p/token/" + token.encode()).hexdigest()[:16]


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """``GITHUB_P2P_CACHE_DIR``, else ``$RUNNER_TEMP``/``$XDG_CACHE_HOME``/tmp based."""
    explicit = env.get("GITHUB_P2P_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    for base in (env.get("RUNNER_TEMP"), env.get("XDG_CACHE_HOME")):
        if base:
            return Path(base) / "github-p2p"
    return Path(tempfile.gettempdir()) / "github-p2p-cache"


@dataclass(frozen=True)
class ClientSettings:
    """Everything a :class:`~github_p2p.client.GitHubClient` needs to know."""

    api_url: str = DEFAULT_API_URL
    token: str | None = field(default=None, repr=False)
    scope: str = ""
    cache_dir: Path | None = None
    policy_file: Path | None = None
    endpoint: str | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    timeout: float = 30.0
    #: Longest a runner waits at the hub for another runner's fill of the same resource.
    fleet_wait: float = 15.0
    user_agent: str = "github-p2p"

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("http://", "https://")):
            raise ConfigError(f"GITHUB_API_URL must be an http(s) URL, got {self.api_url!r}")
        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(
                f"GITHUB_P2P_ENDPOINT must be an http(s) URL, got {self.endpoint!r}"
            )
        if self.timeout <= 0 or self.fleet_wait < 0:
            raise ConfigError("timeouts must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClientSettings:
        """Read ``GITHUB_API_URL``, ``GITHUB_TOKEN``/``GH_TOKEN``, ``GITHUB_REPOSITORY``,
        ``GITHUB_P2P_CACHE_DIR``, ``GITHUB_P2P_ENDPOINT`` and ``GITHUB_P2P_POLICY``."""
        env = os.environ if env is None else env
        token = (env.get("GH_TOKEN") or env.get("GITHUB_TOKEN") or "").strip() or None
        policy = env.get("GITHUB_P2P_POLICY", "").strip()
        return cls(
            api_url=(env.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/"),
            token=token,
            scope=env.get("GITHUB_REPOSITORY", "").strip(),
            cache_dir=default_cache_dir(env),
            policy_file=Path(policy) if policy else None,
            endpoint=(env.get("GITHUB_P2P_ENDPOINT") or "").strip().rstrip("/") or None,
        )
