"""github-p2p: share GitHub API responses across CI runners over an encrypted libp2p fleet.

The public Python API::

    from github_p2p import GitHubClient
    gh = GitHubClient.from_env()
    repo = gh.get("/repos/octo/hello")
"""

from __future__ import annotations

from .client import GitHubClient
from .config import ClientSettings
from .engine import CachedResponse
from .errors import (
    ConfigError,
    GitHubHTTPError,
    GitHubP2PError,
    IntegrityError,
    RateLimitExceededError,
    UpstreamError,
)
from .stats import Outcome

__all__ = [
    "CachedResponse",
    "ClientSettings",
    "ConfigError",
    "GitHubClient",
    "GitHubHTTPError",
    "GitHubP2PError",
    "IntegrityError",
    "Outcome",
    "RateLimitExceededError",
    "UpstreamError",
]

__version__ = "0.1.0"
