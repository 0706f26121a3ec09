"""github-p2p: share GitHub API responses across CI runners over an encrypted libp2p fleet.

The public Python API::

    from github_p2p import GitHubClient
    gh = GitHubClient.from_env()
    repo = gh.get("/repos/octo/hello")
"""

from __future__ import annotations

from github_p2p.cache.client import GitHubClient
from github_p2p.cache.engine import CachedResponse
from github_p2p.config import ClientSettings
from github_p2p.core.stats import Outcome
from github_p2p.errors import (
    ConfigError,
    GitHubHTTPError,
    GitHubP2PError,
    IntegrityError,
    RateLimitExceededError,
    UpstreamError,
)

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
    "__version__",
]

#: The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.2.0"
