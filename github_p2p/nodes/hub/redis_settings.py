"""Where hubs share their state in Redis: the URL, validated once at the edge, and the key layout.

``--redis-url`` takes ``redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`` or ``rediss://`` (TLS), with
``?cluster=yes`` for a Redis Cluster (HOST:PORT is then any node of it). A
TLS connection verifies the server's certificate and host name unless the URL says
``ssl_cert_reqs=none``: coredis's own default (``CERT_OPTIONAL``, no host name check) would hand
the ACL password to anyone in the middle. The password may come from
``GITHUB_P2P_REDIS_PASSWORD`` instead of the URL, so it stays out of ``ps``.

Every key of a fleet starts with ``gp2p:{NAMESPACE}:``, where the namespace is a hash of the
network key: fleets sharing one Redis never meet, and the hash tag puts all of a fleet's keys in
one Redis Cluster slot, so the Lua scripts (which touch several keys) run on a cluster too.
"""

from __future__ import annotations

import hashlib
import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from github_p2p.errors import ConfigError

__all__ = ["RedisKeys", "RedisSettings", "fleet_namespace"]

_TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs",
                          "ssl_check_hostname"})
_OPTIONS = _TLS_OPTIONS | {"cluster"}
_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
              "none": ssl.CERT_NONE}
_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})


@dataclass(frozen=True)
class RedisSettings:
    """A validated Redis location plus the hub's timings against it."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    #: A Redis Cluster: commands go to the node serving the fleet's slot.
    cluster: bool = False
    #: TLS options (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
    #: ``ssl_check_hostname``) as the URL gave them.
    tls_options: tuple[tuple[str, str], ...] = ()
    #: Bound on one Redis command; past it Redis counts as unreachable.
    op_timeout: float = 2.0
    connect_timeout: float = 2.0
    #: How often a hub says it is alive and looks for dead hubs' leases.
    heartbeat: float = 1.0
    #: A hub silent for this long is dead: the leases its runners held are handed on.
    hub_ttl: float = 10.0
    #: How often the entry count and memory figures are refreshed (a SCAN of the fleet's keys).
    figures_interval: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise ConfigError("the Redis URL has no host")
        if not 0 < self.port < 65536:
            raise ConfigError(f"the Redis port must be 1-65535, not {self.port}")
        if self.db < 0:
            raise ConfigError("the Redis database number must be 0 or more")
        if self.cluster and self.db:
            raise ConfigError("a Redis Cluster has database 0 only")
        for name in ("op_timeout", "connect_timeout", "heartbeat", "hub_ttl",
                     "figures_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"Redis {name} must be positive")
        if self.hub_ttl <= 2 * self.heartbeat:
            raise ConfigError("Redis hub_ttl must exceed two heartbeats")
        options = dict(self.tls_options)
        if options.get("ssl_cert_reqs", "required") not in _CERT_REQS:
            raise ConfigError("ssl_cert_reqs must be required, optional or none")
        check = options.get("ssl_check_hostname", "true").lower()
        if check not in _TRUE | _FALSE:
            raise ConfigError("ssl_check_hostname must be true or false")

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None,
                 **timings: Any) -> RedisSettings:
        """Parse ``url`` (``redis://`` or ``rediss://``); ``GITHUB_P2P_REDIS_PASSWORD`` in
        ``env`` supplies the password when the URL has none. Raises :class:`ConfigError`."""
        env = os.environ if env is None else env
        try:
            parts = urlsplit(url.strip())
            port = parts.port or 6379
        except ValueError as exc:
            raise ConfigError(f"not a Redis URL: {exc}") from None
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigError("the Redis URL must start with redis:// or rediss:// (TLS)")
        path = unquote(parts.path).strip("/")
        if path and not path.isdigit():
            raise ConfigError(f"the Redis database must be a number, not {path!r}")
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - _OPTIONS)
        if unknown:
            raise ConfigError(f"unknown Redis URL option(s): {', '.join(unknown)}")
        if set(query) & _TLS_OPTIONS and parts.scheme != "rediss":
            raise ConfigError("TLS options need a rediss:// URL")
        cluster = query.pop("cluster", ["no"])[-1].lower()
        if cluster not in _TRUE | _FALSE:
            raise ConfigError("cluster must be yes or no")
        password = unquote(parts.password) if parts.password else None
        password = password or env.get("GITHUB_P2P_REDIS_PASSWORD") or None
        return cls(host=parts.hostname or "", port=port, db=int(path or 0),
                   username=unquote(parts.username) if parts.username else None,
                   password=password, tls=parts.scheme == "rediss", cluster=cluster in _TRUE,
                   tls_options=tuple(sorted((k, v[-1]) for k, v in query.items())),
                   **timings)

    @property
    def display(self) -> str:
        """The URL without its password, for logs and status pages."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{'rediss' if self.tls else 'redis'}://{user}{host}:{self.port}/{self.db}"
                + ("?cluster=yes" if self.cluster else ""))

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (``None`` for ``redis://``): verifying by default."""
        if not self.tls:
            return None
        options = dict(self.tls_options)
        ca = options.get("ssl_ca_certs")
        context = ssl.create_default_context(
            cafile=ca if ca and not os.path.isdir(ca) else None,
            capath=ca if ca and os.path.isdir(ca) else None)
        if options.get("ssl_certfile"):
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
        reqs = _CERT_REQS[options.get("ssl_cert_reqs", "required")]
        context.check_hostname = (reqs != ssl.CERT_NONE and options.get(
            "ssl_check_hostname", "true").lower() in _TRUE)
        context.verify_mode = reqs
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`coredis.Redis` (or :class:`coredis.RedisCluster`)."""
        options: dict[str, Any] = {
            "host": self.host, "port": self.port, "username": self.username,
            "password": self.password, "stream_timeout": self.op_timeout,
            "connect_timeout": self.connect_timeout,
        }
        if not self.cluster:
            options.update(db=self.db, client_name="github-p2p-hub")
        try:
            context = self.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"Redis TLS settings: {exc}") from None
        if context is not None:
            options["ssl_context"] = context
        return options


def fleet_namespace(network_key: bytes) -> str:
    """The fleet's key namespace: a one-way hash of its network key (Redis learns nothing)."""
    return hashlib.sha256(b"github-p2p/redis-namespace/v1\x00" + network_key).hexdigest()[:20]


@dataclass(frozen=True)
class RedisKeys:
    """Key names of one fleet; the Lua scripts build the same names from :attr:`prefix`."""

    namespace: str

    @property
    def prefix(self) -> str:
        """``gp2p:{NAMESPACE}:``; the braces are the Redis Cluster hash tag."""
        return f"gp2p:{{{self.namespace}}}:"

    def entry(self, entry_id: bytes) -> str:
        """A hash: ``v`` envelope, ``f`` fresh until (ms), ``s`` stored at (ms), ``t`` tag,
        ``g`` the tag's generation when it was put."""
        return f"{self.prefix}e:{entry_id.hex()}"

    def lease(self, entry_id: bytes) -> str:
        """``TOKEN|HOLDER`` while someone fills the entry (``SET NX PX``)."""
        return f"{self.prefix}l:{entry_id.hex()}"

    def tag(self, tag: bytes) -> str:
        """The tag's current generation; deleting it invalidates every entry put under it."""
        return f"{self.prefix}g:{tag.hex()}"

    def holder(self, holder: str) -> str:
        """The set of entry ids (hex) whose leases ``holder`` holds."""
        return f"{self.prefix}h:{holder}"

    def hub_holders(self, instance: str) -> str:
        """The holders that hold leases through hub ``instance``."""
        return f"{self.prefix}i:{instance}"

    @property
    def hubs(self) -> str:
        """Hash of hub instance -> the time (ms) its heartbeat lapses."""
        return f"{self.prefix}hubs"

    @property
    def limits(self) -> str:
        """Hash of rate-limit key -> until (epoch seconds)."""
        return f"{self.prefix}limits"

    @property
    def channel(self) -> str:
        """Pub/sub channel of fills, releases and rate limits."""
        return f"{self.prefix}events"

    @property
    def entries_pattern(self) -> str:
        """SCAN pattern of the fleet's entries."""
        return f"{self.prefix}e:*"
