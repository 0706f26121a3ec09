"""``github-p2p gh ARGS…``: gh with its read-only calls served through the github-p2p cache.

* ``gh api`` runs here (:func:`~github_p2p.cli.gh.apirun.run_api`, the same implementation as
  ``github-p2p api``), through :class:`~github_p2p.cache.client.GitHubClient` (the runner's
  daemon when ``GITHUB_P2P_ENDPOINT`` is set, else an in-process cache), with gh's own host,
  token and output format; reads (GETs and GraphQL queries) are served from the cache, writes
  pass through it and invalidate what they touch;
* read-only ``--json`` commands run the real gh once per family TTL: with the daemon, once
  for the whole fleet (the output is shared sealed, see :mod:`github_p2p.nodes.outputs`), else
  once per runner (a local store); the key is argv, repository and host (and the token when the
  output depends on the caller: ``@me``, ``viewer*`` fields);
* everything else runs the real gh unchanged, with its exit code; a command that may write
  invalidates the cached command outputs (and, for ``gh api``, the written API path).

Whenever the wrapper cannot do exactly what gh would (a terminal on stdout, forced colour, an
unknown flag, gh's stored login instead of an environment token, another API host than the
fleet's), it runs the real gh instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, TextIO

from github_p2p.cache.client import EndpointBackend, EngineBackend, GitHubClient
from github_p2p.cache.localstore import LocalStore
from github_p2p.cli.gh.apirun import (
    ApiEnvironment,
    Fallback,
    Transport,
    UpstreamUrls,
    run_api,
)
from github_p2p.cli.gh.ghenv import api_base, gh_host, gh_repo, gh_token, same_api
from github_p2p.cli.gh.plan import ApiCommand, CachedRun, PassThrough, plan
from github_p2p.cli.gh.realgh import RealGh, find_real_gh
from github_p2p.cli.gh.sharing import OutputShare
from github_p2p.config import DEFAULT_API_URL, ClientSettings, default_cache_dir, token_fingerprint
from github_p2p.core.entry import CacheEntry
from github_p2p.errors import ConfigError, FleetUnavailableError, UpstreamError

__all__ = ["GhWrapper"]

log = logging.getLogger(__name__)

_COMMAND_TAG = "gh-commands"


class GhWrapper:
    """One invocation of the gh wrapper; streams and environment are injectable for tests."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        stdout: BinaryIO | None = None,
        stderr: TextIO | None = None,
        cwd: Path | None = None,
        clock: Callable[[], float] = time.time,
        jq: str | None = None,
        stdin: BinaryIO | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self.stderr = stderr if stderr is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin.buffer
        self.cwd = cwd
        self._clock = clock
        self._jq = jq if jq is not None else shutil.which("jq")
        self._real: RealGh | None = None

    # -- the real gh -------------------------------------------------------------------------

    @property
    def real(self) -> RealGh:
        """The real gh (:class:`ConfigError` when it is not installed)."""
        if self._real is None:
            self._real = RealGh(find_real_gh(self.env), self.env)
        return self._real

    def _human_output(self) -> bool:
        # gh formats for a terminal (colours, tables, pretty JSON): let it.
        if self.env.get("GH_FORCE_TTY") or self.env.get("CLICOLOR_FORCE", "0") != "0":
            return True
        try:
            return os.isatty(self.stdout.fileno())
        except (AttributeError, OSError, ValueError):
            return False

    # -- entry point -------------------------------------------------------------------------

    def run(self, argv: Sequence[str]) -> int:
        """Carry out ``gh ARGV``; returns the exit code."""
        decided = plan(argv, gh_repo=gh_repo(self.env))
        if isinstance(decided, ApiCommand):
            served = self._serve_api(decided)
            if served is not None:
                return served
            return self._pass_through(argv, PassThrough("served by gh itself",
                                                        writes=decided.writes))
        if isinstance(decided, CachedRun) and not self._human_output():
            return self._cached_run(argv, decided)
        if isinstance(decided, PassThrough):
            return self._pass_through(argv, decided)
        return self._pass_through(argv, PassThrough("terminal output", writes=False))

    # -- gh api ------------------------------------------------------------------------------

    def _client(self, base: str, token: str) -> GitHubClient | None:
        settings = ClientSettings.from_env(self.env)
        if settings.endpoint:
            # The daemon talks to one API: serve only requests meant for it.
            fleet_api = self.env.get("GITHUB_API_URL") or DEFAULT_API_URL
            if not same_api(fleet_api, base):
                return None
            return GitHubClient(EndpointBackend(settings.endpoint, token,
                                                timeout=settings.timeout + settings.fleet_wait))
        return GitHubClient.in_process(replace(settings, api_url=base, token=token))

    def _target(self, hostname: str | None) -> tuple[str, str] | None:
        host = gh_host(self.env, hostname)
        base = api_base(host)
        token = gh_token(self.env, host)
        if base is None or token is None:
            return None
        return base, token

    def _read_file(self, name: str) -> bytes:
        if name == "-":
            return self.stdin.read()
        try:
            return (Path(self.cwd or ".") / name).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {name}: {exc.strerror}") from exc

    def _environment(self, request: ApiCommand, base: str) -> ApiEnvironment:
        repo = gh_repo(self.env)

        def resolve(name: str) -> str | None:
            if repo is None or name == "branch":
                return None
            return repo[0] if name == "owner" else repo[1]

        version = self._gh_version() if request.args.paginate else None
        return ApiEnvironment(api_url=base, resolve=resolve, read_file=self._read_file,
                              now=self._clock, jq=self._jq, gh_version=version)

    def _serve_api(self, request: ApiCommand) -> int | None:
        """Run a ``gh api`` command line; ``None`` when gh should run it instead."""
        if self._human_output() or (request.args.jq and self._jq is None):
            return None
        target = self._target(request.args.hostname)
        if target is None:
            return None
        client = self._client(*target)
        if client is None:
            return None
        try:
            with client:
                backend: Transport = client.backend
                if isinstance(backend, EndpointBackend):
                    backend = UpstreamUrls(backend)  # gh prints GitHub's URLs, not ours
                result = run_api(request.args, backend, self._environment(request, target[0]))
        except (Fallback, ConfigError) as exc:
            # Raised before anything was sent for a write (plan keeps writes simple), so gh
            # may run the command line from the start.
            log.debug("gh api served by gh: %s", exc)
            return None
        except UpstreamError as exc:
            if request.writes:
                # The write may have reached GitHub: never send it twice.
                print(f"github-p2p: {exc}", file=self.stderr)
                return 1
            print(f"github-p2p: warning: {exc}; running gh directly", file=self.stderr)
            return None
        self.stdout.write(result.stdout)
        self.stdout.flush()
        if result.stderr:
            self.stderr.write(result.stderr)
        if request.writes:
            self._invalidate(None)  # the write itself went through the cache, which forgot it
        return result.code

    def _gh_version(self) -> tuple[int, int, int] | None:
        try:
            return self.real.version()
        except ConfigError:  # no real gh: print like current gh releases
            return None

    # -- read-only --json commands -----------------------------------------------------------

    def _commands(self) -> LocalStore:
        return LocalStore(default_cache_dir(self.env) / "gh-commands")

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=self.cwd, capture_output=True,
                                  timeout=10, check=False, env=self.env)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""

    def _repo_context(self, run: CachedRun) -> str:
        """What decides the repository gh acts on when ``-R`` is not given."""
        if run.repo:
            return "repo:" + run.repo
        if self.env.get("GH_REPO"):
            return "GH_REPO:" + self.env["GH_REPO"]
        remotes = self._git("config", "--get-regexp", r"^remote\..*\.(url|gh-resolved)$")
        branch = self._git("symbolic-ref", "--quiet", "--short", "HEAD")
        return "git:" + remotes + "|" + branch

    def _command_key(self, argv: Sequence[str], run: CachedRun) -> str:
        # The token is left out unless the output depends on it: every job has its own token,
        # and the fleet shares one output per command, repository and host.
        host = gh_host(self.env)
        token = gh_token(self.env, host) if run.private else None
        material = json.dumps([host, token_fingerprint(token) if token else "",
                               self._repo_context(run), list(argv)])
        return hashlib.sha256(material.encode()).hexdigest()

    def _share(self) -> OutputShare | None:
        settings = ClientSettings.from_env(self.env)
        if not settings.endpoint:
            return None
        return OutputShare(settings.endpoint, settings.timeout + settings.fleet_wait)

    def _cached_run(self, argv: Sequence[str], run: CachedRun) -> int:
        key = self._command_key(argv, run)
        share = self._share()
        if share is not None:
            with share:
                try:
                    return self._shared_run(argv, run, key, share)
                except FleetUnavailableError as exc:
                    log.warning("%s; keeping gh outputs on this runner", exc)
        return self._local_run(argv, run, key)

    def _shared_run(self, argv: Sequence[str], run: CachedRun, key: str,
                    share: OutputShare) -> int:
        """Through the daemon: one runner of the fleet runs gh, the others print its output."""
        output, lease = share.claim(key, run.ttl, run.private)
        if output is not None:
            log.debug("gh %s served by the fleet", run.family)
            self.stdout.write(output)
            self.stdout.flush()
            return 0
        try:
            code, output = self.real.capture(argv, cwd=self.cwd)
        except BaseException:
            if lease:
                share.release(key, lease)
            raise
        if code == 0:
            share.fill(key, run.ttl, run.private, output, lease)
        elif lease:
            share.release(key, lease)
        self.stdout.write(output)
        self.stdout.flush()
        return code

    def _local_run(self, argv: Sequence[str], run: CachedRun, key: str) -> int:
        store = self._commands()
        try:
            now = self._clock()
            entry = store.get(key)
            if entry is not None and entry.is_fresh(now):
                log.debug("gh %s served from the cache", run.family)
                self.stdout.write(entry.body)
                self.stdout.flush()
                return 0
            code, output = self.real.capture(argv, cwd=self.cwd)
            if code == 0:
                now = self._clock()
                store.put(key, CacheEntry(status=200, headers=(), body=output, fetched_at=now,
                                          expires_at=now + run.ttl),
                          keep_for=run.ttl, tag=_COMMAND_TAG)
            self.stdout.write(output)
            self.stdout.flush()
            return code
        finally:
            store.close()

    # -- everything else ---------------------------------------------------------------------

    def _pass_through(self, argv: Sequence[str], decided: PassThrough) -> int:
        real = self.real  # a missing gh is a ConfigError before anything runs
        with contextlib.suppress(OSError, ValueError):
            self.stdout.flush()
        code = real.run(argv, cwd=self.cwd)
        if decided.writes:
            self._invalidate(decided.api_path)
        return code

    def _invalidate(self, api_path: str | None) -> None:
        """After a command that may have written: forget cached command outputs, and the
        written API path in the in-process cache."""
        store = self._commands()
        try:
            store.invalidate(_COMMAND_TAG)
        finally:
            store.close()
        share = self._share()
        if share is not None:
            with share:
                try:
                    share.forget()
                except FleetUnavailableError as exc:
                    # The write itself succeeded; shared outputs then live out their TTL.
                    log.warning("%s", exc)
        if api_path is None:
            return
        target = self._target(None)
        if target is None:
            return
        client = self._client(*target)
        if client is None:
            return
        with client:
            if isinstance(client.backend, EngineBackend):
                client.backend.engine.invalidate(api_path)
            elif isinstance(client.backend, EndpointBackend):
                try:
                    client.backend.invalidate(api_path)
                except UpstreamError as exc:
                    # The write itself succeeded; the cached copy then lives out its TTL.
                    log.warning("%s", exc)

