"""The gh wrapper (``github-p2p gh``) and github-p2p's one ``gh api`` implementation.

:mod:`.plan` decides (pure), :mod:`.wrapper` carries it out, :mod:`.realgh` finds and runs the
real gh. ``gh api``: :mod:`.apiargs` reads the command line, :mod:`.apicall` builds the requests,
:mod:`.apirun` runs them, :mod:`.output`, :mod:`.gofmt` and :mod:`.gotemplate` print like gh;
:mod:`.apicmd` is ``github-p2p api``."""

from __future__ import annotations

from github_p2p.cli.gh.plan import ApiCommand, CachedRun, PassThrough, plan
from github_p2p.cli.gh.realgh import find_real_gh
from github_p2p.cli.gh.wrapper import GhWrapper

__all__ = ["ApiCommand", "CachedRun", "GhWrapper", "PassThrough", "find_real_gh", "plan"]
