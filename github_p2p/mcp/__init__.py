"""Model Context Protocol tools on every node (the ``github-p2p[mcp]`` extra).

Surfaces: ``github-p2p mcp`` (stdio), a runner daemon's ``/_p2p/mcp`` and a bootstrap node's
``/mcp`` (Streamable HTTP). Modules: :mod:`.interface` (what the tools need from a node),
:mod:`.adapters` (daemon, hub, endpoint and in-process implementations of it), :mod:`.tools`
(the tools and resources), :mod:`.queue_tools` (the work queue's tools), :mod:`.auth` (the
hub's bearer token), :mod:`.server` (building the SDK server and its HTTP app),
:mod:`.surfaces` (each surface put together).

Importing this package needs the official MCP SDK; without it the import fails with a
:class:`~github_p2p.errors.ConfigError` (which the command line reports with exit code 2) that
is also an :class:`ImportError`.
"""

from __future__ import annotations

from github_p2p.errors import ConfigError

__all__ = ["MissingExtraError"]


class MissingExtraError(ConfigError, ImportError):
    """The ``mcp`` extra is not installed."""


try:
    import mcp as _sdk  # noqa: F401  (the check itself)
except ImportError as exc:
    raise MissingExtraError(
        "MCP needs the official SDK: pip install 'github-p2p[mcp]'") from exc
