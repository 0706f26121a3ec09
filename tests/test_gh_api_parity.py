"""``github-p2p api`` and the wrapper's ``gh api`` against the real ``gh api`` (Debian's gh),
byte for byte, on a table of flag combinations, all talking to one simulator over HTTPS.

Each row runs the real gh, then ``github-p2p api``, then ``github-p2p gh api`` (the wrapper),
each a real process, and compares stdout, stderr and the exit code. Rows that read come before
rows that write.
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gh_support import JQ, REAL_GH, certificate, gh_environment, needs_real_gh

from github_p2p.testing.simulator import GitHubSimulator, SimulatorConfig

TOKEN = "ghp_paritytoken01"
REPO = "octo/hello"
PAGED = ("query($endCursor: String) { repository(owner: \"octo\", name: \"hello\") { "
         "pullRequests(first: 5, after: $endCursor) { nodes { number title } "
         "pageInfo { hasNextPage endCursor } } } }")

#: (name, gh api arguments); ``{URL}`` is the simulator's REST base, ``{DIR}`` a scratch dir.
ROWS = [
    ("single object", ["repos/octo/hello"]),
    ("placeholders from GH_REPO", ["repos/{owner}/{repo}/releases/latest"]),
    ("REST pagination", ["repos/octo/hello/releases", "--paginate", "-X", "GET",
                         "-F", "per_page=2"]),
    ("GET fields: sorted, encoded, typed", ["-X", "GET", "repos/octo/hello/issues",
                                           "-f", "state=closed", "-F", "per_page=3",
                                           "-f", "q=a b<&>", "-F", "flag=true"]),
    ("jq object", ["repos/octo/hello", "--jq", ".owner"]),
    ("jq scalars like go-gh", ["repos/octo/hello/issues", "-X", "GET", "-q",
                               '.[:3][] | .number, .title, null, 1.5, {t: .title, n: "<&>"}']),
    ("template table", ["repos/octo/hello/issues", "-X", "GET", "-F", "per_page=6", "-t",
                        '{{range .}}{{tablerow .number .title .user.login '
                        '(.labels | pluck "name" | join ", ")}}{{end}}']),
    ("template values", ["repos/octo/hello", "--template",
                         '{{.full_name}} {{.id}} {{.homepage}} {{.nope}} {{.owner.login}} '
                         '{{if gt .stargazers_count 10.0}}many{{else}}few{{end}} '
                         '{{printf "%s=%v" .name .forks_count}} '
                         '{{timefmt "Mon Jan 2 2006" .created_at}} {{truncate 8 .description}}'
                         '{{"\\n"}}']),
    ("HTTP error", ["repos/octo/hello/nope"]),
    ("silent", ["--silent", "repos/octo/hello"]),
    ("absolute URL", ["{URL}/repos/octo/hello", "-q", ".full_name"]),
    ("raw media type", ["repos/octo/hello/contents/README.md",
                        "-H", "Accept: application/vnd.github.raw"]),
    ("previews", ["-p", "mercy,nebula", "repos/octo/hello", "-q", ".name"]),
    ("GraphQL query", ["graphql", "-f", "query={ viewer { login } }"]),
    ("GraphQL variables", ["graphql", "-F", "n=2", "-f", "query=query($n: Int!) { repository("
                           'owner: "octo", name: "hello") { issues(first: $n) { nodes { '
                           "number title } } } }"]),
    ("GraphQL pagination", ["graphql", "--paginate", "-f", f"query={PAGED}"]),
    ("GraphQL errors", ["graphql", "-f", 'query={ repository(owner: "o", name: "r") { nope } }']),
    ("REST write refused (422)", ["repos/octo/hello/issues", "-f", "nope=1"]),
    ("write with a typed @file field", ["repos/octo/hello/issues", "-F", "title=@{DIR}/title",
                                        "-F", "labels[]=bug", "--jq", ".title, .labels[].name"]),
    ("write with --input", ["repos/octo/hello/issues", "--input", "{DIR}/issue.json",
                            "--jq", ".title"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """One simulator over HTTPS for the whole table, and what each side needs to reach it."""
    directory = tmp_path_factory.mktemp("parity")
    ca_cert, ca_key = certificate("parity CA", None, None)
    cert, key = certificate("127.0.0.1", ca_cert.subject, ca_key)
    from cryptography.hazmat.primitives import serialization

    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    (directory / "title").write_text("Title from a file")
    (directory / "issue.json").write_text('{"title": "Issue from --input", "body": "b"}')
    with GitHubSimulator(SimulatorConfig(ssl_context=context, release_count=5)) as sim, \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("REQUESTS_CA_BUNDLE", str(directory / "ca.pem"))
        gh_env = gh_environment(sim, directory / "ca.pem", directory, TOKEN)
        host = gh_env["GH_HOST"]
        gh_env["GH_REPO"] = f"{host}/{REPO}"
        p2p_env = {**gh_env, "GITHUB_API_URL": f"{sim.url}/api/v3", "GITHUB_TOKEN": TOKEN,
                   "GITHUB_P2P_CACHE_DIR": str(directory / "p2p-cache"),
                   "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{gh_env['PATH']}"}
        wrapper_env = {**p2p_env, "GITHUB_P2P_REAL_GH": REAL_GH or "",
                       "GITHUB_P2P_CACHE_DIR": str(directory / "wrapper-cache"),
                       "REQUESTS_CA_BUNDLE": str(directory / "ca.pem")}
        for name in ("GITHUB_API_URL", "GITHUB_TOKEN"):
            wrapper_env.pop(name)  # the wrapper reads gh's own variables
        yield {"sim": sim, "gh": gh_env, "p2p": p2p_env, "wrapper": wrapper_env,
               "dir": directory}


def _argv(argv: list[str], world: dict[str, object]) -> list[str]:
    sim = world["sim"]
    assert isinstance(sim, GitHubSimulator)
    return [a.replace("{URL}", f"{sim.url}/api/v3").replace("{DIR}", str(world["dir"]))
            for a in argv]


@needs_real_gh
@pytest.mark.skipif(JQ is None, reason="jq is not installed (scripts/ensure-gh)")
@pytest.mark.parametrize(("name", "argv"), ROWS, ids=[row[0] for row in ROWS])
def test_github_p2p_api_prints_what_gh_api_prints(name: str, argv: list[str],
                                                  world: dict[str, object]) -> None:
    assert REAL_GH is not None
    args = _argv(argv, world)
    real = subprocess.run([REAL_GH, "api", *args], env=world["gh"], capture_output=True,
                          timeout=60)
    ours = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api", *args],
                          env=world["p2p"], capture_output=True, timeout=60)
    assert (ours.returncode, ours.stdout) == (real.returncode, real.stdout), name
    assert ours.stderr == real.stderr, name
    wrapped = subprocess.run([sys.executable, "-m", "github_p2p.cli", "gh", "api", *args],
                             env=world["wrapper"], capture_output=True, timeout=60)
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (
        real.returncode, real.stdout, real.stderr), name


@needs_real_gh
def test_include_prints_the_status_line_and_the_headers_github_p2p_keeps(
        world: dict[str, object]) -> None:
    assert REAL_GH is not None
    args = ["-i", "repos/octo/hello/releases?per_page=2"]
    real = subprocess.run([REAL_GH, "api", *args], env=world["gh"], capture_output=True,
                          timeout=60)
    ours = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api", *args],
                          env=world["p2p"], capture_output=True, timeout=60)
    real_head, _, real_body = real.stdout.partition(b"\r\n\r\n")
    our_head, _, our_body = ours.stdout.partition(b"\r\n\r\n")
    assert ours.returncode == real.returncode == 0 and our_body == real_body
    real_lines = re.split(rb"\r?\n", real_head)
    our_lines = re.split(rb"\r?\n", our_head)
    assert our_lines[0] == real_lines[0] == b"HTTP/1.1 200 OK"
    # Every header github-p2p prints is one gh printed, in gh's spelling and order, except
    # the per-request rate-limit counters; the cache keeps no Date, ETag or request id.
    volatile = (b"X-Ratelimit-Remaining", b"X-Ratelimit-Used", b"X-Ratelimit-Reset")
    stable = [line for line in our_lines[1:] if not line.startswith(volatile)]
    assert stable and all(line in real_lines for line in stable)
    assert [n.split(b":")[0] for n in our_lines[1:]] == sorted(
        n.split(b":")[0] for n in our_lines[1:])
    assert {b"Content-Type", b"Link"} <= {line.split(b":")[0] for line in our_lines[1:]}


def test_github_p2p_api_usage_errors_exit_2(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "GITHUB_API_URL": "http://127.0.0.1:9",
           "GITHUB_P2P_CACHE_DIR": str(tmp_path)}
    for argv, message in ((["repos/o/r", "--jq", ".a", "--silent"], "only one of"),
                          (["repos/o/r", "--frobnicate"], "a flag gh api does not have"),
                          (["repos/o/r", "--hostname", "elsewhere.example"], "--hostname"),
                          (["https://elsewhere.example/x"], "not the API github-p2p serves"),
                          (["repos/o/r", "-f", "novalue"], "invalid key")):
        done = subprocess.run([sys.executable, "-m", "github_p2p.cli", "api", *argv], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, (argv, done.stderr)
        assert "Traceback" not in done.stderr
