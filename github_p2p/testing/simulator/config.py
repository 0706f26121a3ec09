"""Settings of the simulated GitHub REST API."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from github_p2p.errors import ConfigError

__all__ = ["SimulatorConfig"]


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator listens, how fast it answers and how much data it pretends to hold.

    ``port=0`` asks the kernel for a free port. Rate limits are per hour window like GitHub's.
    ``installation_rate_limit`` is the budget of ``ghs_`` tokens (one per repository; GitHub's
    ``GITHUB_TOKEN`` gets 1,000); ``None`` means the same as ``rate_limit``.
    """

    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.0
    rate_limit: int = 5000
    installation_rate_limit: int | None = None
    unauthenticated_rate_limit: int = 60
    rate_limit_window: float = 3600.0
    per_page_default: int = 30
    per_page_max: int = 100
    issue_count: int = 45
    pull_count: int = 12
    release_count: int = 8
    workflow_run_count: int = 40
    runner_count: int = 3
    content_size: int = 256
    max_request_body: int = 10 * 1024 * 1024
    idle_timeout: float = 60.0
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within 0..65535, not {self.port}")
        if self.latency < 0:
            raise ConfigError("latency must not be negative")
        for name in (
            "rate_limit",
            "unauthenticated_rate_limit",
            "per_page_default",
            "per_page_max",
            "content_size",
            "max_request_body",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.installation_rate_limit is not None and self.installation_rate_limit < 1:
            raise ConfigError("installation_rate_limit must be at least 1")
        if self.per_page_default > self.per_page_max:
            raise ConfigError("per_page_default must not exceed per_page_max")
        for name in (
            "issue_count",
            "pull_count",
            "release_count",
            "workflow_run_count",
            "runner_count",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.rate_limit_window <= 0 or self.idle_timeout <= 0:
            raise ConfigError("rate_limit_window and idle_timeout must be positive")

    @property
    def installation_limit(self) -> int:
        """The budget of one repository's ``ghs_`` tokens."""
        if self.installation_rate_limit is None:
            return self.rate_limit
        return self.installation_rate_limit
