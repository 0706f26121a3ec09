"""The gh wrapper (``github-p2p gh``): :mod:`.plan` decides (pure), :mod:`.wrapper` carries
it out, :mod:`.realgh` finds and runs the real gh, :mod:`.output` prints like gh."""

from __future__ import annotations

from github_p2p.cli.gh.plan import ApiGet, CachedRun, PassThrough, plan
from github_p2p.cli.gh.realgh import find_real_gh
from github_p2p.cli.gh.wrapper import GhWrapper

__all__ = ["ApiGet", "CachedRun", "GhWrapper", "PassThrough", "find_real_gh", "plan"]
