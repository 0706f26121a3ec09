"""The daemon's Python environment: a whole virtualenv, built once from ``uv.lock`` and cached.

What makes a job's set-up slow is building an environment: downloading ~85 packages, compiling
fastecdsa (no wheels) against GMP, and compiling bytecode. So the action keeps the *whole*
virtualenv, bytecode included, under a key of everything that decides its content: the OS,
the architecture, the interpreter (version and path), the extras, the hash of ``uv.lock`` and
the hash of github-p2p's own source. ``actions/cache`` restores it on GitHub-hosted runners;
on self-hosted runners it simply stays in the tool cache. A restored environment needs no
network, no compiler and no bytecode compilation: the daemon starts at once.

A cold build runs ``uv sync --frozen`` against the lock (hashes checked, nothing resolved), with
the uv version and wheel hash that the lock itself pins, fetched with the standard library. The
environment is built under a temporary name and renamed into place whole (``uv venv
--relocatable``), so a half-built one is never used or cached, and two jobs on one self-hosted
machine cannot trip over each other.

Bytecode: compiling the whole environment at install costs 3-7 s of CPU on two cores, more
than a cold job should wait. Instead the daemon's first start writes the bytecode of what it
imports (it must compile that much to start anyway), and :func:`warm_bytecode` runs at the end
of the job that built the environment, before ``actions/cache`` saves it: it compiles the
package and imports the daemon's modules, a no-op when the daemon already did. A restored
environment then imports without compiling anything.

Standard library only: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["Interpreter", "build", "cache_root", "environment_key", "is_ready", "source_hash",
           "uv_wheel", "warm_bytecode"]

#: Bump to invalidate every cached environment (a change in how they are built).
LAYOUT_VERSION = "v1"
MARKER = ".github-p2p-env.json"
_SKIP_DIRS = frozenset({"__pycache__", "build", "dist"})


@dataclass(frozen=True)
class Interpreter:
    """The Python the daemon runs on, as the cache key needs it."""

    path: str
    version: str  # major.minor.micro
    implementation: str  # cpython, pypy, ...

    @classmethod
    def probe(cls, python: str) -> Interpreter:
        """Ask ``python`` itself (its real path: a venv pins the interpreter it was made with)."""
        code = ("import sys, os; print(os.path.realpath(sys.executable)); "
                "print('%d.%d.%d' % sys.version_info[:3]); print(sys.implementation.name)")
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=30,
                             check=True).stdout.split()
        return cls(path=out[0], version=out[1], implementation=out[2])

    @property
    def minor(self) -> str:
        """major.minor, as people write it."""
        return ".".join(self.version.split(".")[:2])


def source_hash(root: Path) -> str:
    """A digest of what gets installed from ``root``: the lock, the packaging and the package's
    files (bytecode and build leftovers excluded). Stable across checkouts of one commit."""
    digest = hashlib.sha256()
    files = [root / "uv.lock", root / "pyproject.toml"]
    for folder, dirs, names in os.walk(root / "github_p2p"):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        files += [Path(folder) / n for n in sorted(names) if not n.endswith((".pyc", ".pyo"))]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def environment_key(*, runner_os: str, arch: str, interpreter: Interpreter,
                    extras: tuple[str, ...], lock_hash: str, content_hash: str) -> str:
    """The cache key (also the environment's directory name): what decides its content."""
    where = hashlib.sha256(interpreter.path.encode()).hexdigest()[:8]
    return "-".join([
        "github-p2p-venv", LAYOUT_VERSION, runner_os or "Linux", arch or "unknown",
        f"{interpreter.implementation}{interpreter.version}", where,
        "+".join(extras) or "base", lock_hash[:12], content_hash[:12],
    ])


def cache_root(env: dict[str, str]) -> Path:
    """Where environments live: the runner's tool cache (persistent on self-hosted runners),
    else the user's cache directory."""
    tool_cache = env.get("RUNNER_TOOL_CACHE")
    if tool_cache:
        return Path(tool_cache) / "github-p2p"
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "github-p2p"


def is_ready(venv: Path, key: str) -> bool:
    """Whether ``venv`` is a complete environment built for ``key``."""
    try:
        marker = json.loads((venv / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("key") == key \
        and (venv / "bin" / "github-p2p").exists()


# -- uv, from the lock ------------------------------------------------------------------------

def _platform_tags() -> tuple[str, ...]:
    """Substrings of a uv wheel's file name that fit this machine, best first."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if sys.platform == "darwin":
        return ("macosx", "arm64" if machine == "aarch64" else "x86_64")
    musl = platform.libc_ver()[0] != "glibc"
    return ("musllinux" if musl else "manylinux", machine)


def uv_wheel(lock_text: str, tags: tuple[str, ...] | None = None) -> tuple[str, str, str]:
    """(version, url, sha256) of the uv wheel for this machine, as ``uv.lock`` pins it."""
    block = re.search(r'\[\[package\]\]\nname = "uv"\nversion = "([^"]+)"\n(.*?)\n\n',
                      lock_text + "\n\n", re.S)
    if block is None:
        raise LookupError("uv is not in uv.lock")
    want = tags or _platform_tags()
    for url, digest in re.findall(r'\{ url = "([^"]+\.whl)", hash = "sha256:([0-9a-f]{64})"',
                                  block.group(2)):
        name = url.rsplit("/", 1)[-1]
        if all(tag in name for tag in want):
            return block.group(1), url, digest
    raise LookupError(f"uv.lock has no uv wheel for {' '.join(want)}")


def locked_uv(root: Path, lock_text: str, log: IO[str]) -> str:
    """The lock's uv binary, downloaded once into ``root`` and checked against its hash."""
    version, url, digest = uv_wheel(lock_text)
    target = root / f"uv-{version}" / "uv"
    if target.exists():
        return str(target)
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise RuntimeError(f"the uv wheel does not match the hash in uv.lock ({url})")
    with zipfile.ZipFile(io.BytesIO(data)) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith(".data/scripts/uv"))
        binary = wheel.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".uv.{os.getpid()}")
    tmp.write_bytes(binary)
    tmp.chmod(0o755)
    os.replace(tmp, target)
    log.write(f"uv {version} from uv.lock in {time.monotonic() - started:.1f} s\n")
    return str(target)


# -- GMP for fastecdsa ------------------------------------------------------------------------

def have_gmp() -> bool:
    """Whether GMP's header is installed (fastecdsa, which has no wheels, builds against it)."""
    dirs = [Path("/usr/include"), Path("/usr/local/include"), Path("/opt/homebrew/include")]
    dirs += sorted(Path("/usr/include").glob("*-linux-gnu"))
    return any((d / "gmp.h").exists() for d in dirs)


def start_gmp_install(log: IO[str]) -> subprocess.Popen[bytes] | None:
    """Start installing libgmp-dev (and gcc when missing) with apt, in the background."""
    if shutil.which("apt-get") is None:
        log.write("no apt-get: cannot install libgmp-dev; building fastecdsa may fail\n")
        return None
    packages = ["libgmp-dev"] + ([] if shutil.which("cc") else ["gcc"])
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = " ".join(["env", "DEBIAN_FRONTEND=noninteractive", *sudo, "apt-get", "install",
                        "-y", "-qq", "--no-install-recommends", *packages])
    update = " ".join([*sudo, "apt-get", "update", "-qq"])
    log.write(f"installing {' '.join(packages)} in the background\n")
    log.flush()
    # The image's package lists may be stale: update only when the first try fails.
    return subprocess.Popen(["sh", "-c", f"{install} || {{ {update} && {install}; }}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


# -- building ---------------------------------------------------------------------------------

def _run(argv: list[str], env: dict[str, str], log: IO[str]) -> None:
    log.write("+ " + " ".join(argv) + "\n")
    log.flush()
    started = time.monotonic()
    subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                   stdin=subprocess.DEVNULL, timeout=900)
    log.write(f"  ({time.monotonic() - started:.1f} s)\n")


def build(*, venv: Path, key: str, python: str, source: Path | None, spec: str | None,
          extras: tuple[str, ...], log: IO[str]) -> dict[str, Any]:
    """Build the environment for ``key`` at ``venv`` (atomically); returns its marker.

    ``source`` is a checkout with ``uv.lock`` (the locked install); ``spec`` a requirement
    (``github-p2p==0.3.0``, installed unlocked with the extras).
    """
    started = time.monotonic()
    root = venv.parent
    root.mkdir(parents=True, exist_ok=True)
    lock_text = (source / "uv.lock").read_text(encoding="utf-8") if source else ""
    uv = locked_uv(root, lock_text, log) if lock_text else (shutil.which("uv") or "")
    if not uv:
        raise RuntimeError("uv is needed to install a requirement spec and is not on PATH")
    tmp = root / f".{venv.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    # Never let uv fetch a Python: the interpreter is the one the key names.
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", UV_PROJECT_ENVIRONMENT=str(tmp))
    apt = None
    try:
        _run([uv, "venv", "--quiet", "--relocatable", "--python", python, str(tmp)], env, log)
        target = str(tmp / "bin" / "python")
        if source is not None:
            sync = [uv, "sync", "--frozen", "--no-dev", "--no-editable",
                    "--project", str(source), "--python", target]
            sync += [arg for extra in extras for arg in ("--extra", extra)]
            if not have_gmp():
                # Overlap apt with the downloads; only fastecdsa waits for it.
                apt = start_gmp_install(log)
                _run([*sync, "--no-install-package", "fastecdsa"], env, log)
                if apt is not None:
                    apt.wait(timeout=600)
            _run(sync, env, log)
        else:
            assert spec is not None
            _run([uv, "pip", "install", "--python", target,
                  with_extras(spec, extras)], env, log)
        marker = {"key": key, "seconds": round(time.monotonic() - started, 2),
                  "python": python, "built": time.time()}
        (tmp / MARKER).write_text(json.dumps(marker), encoding="utf-8")
        _move_into_place(tmp, venv, key)
        return marker
    finally:
        if apt is not None and apt.poll() is None:
            apt.kill()
        shutil.rmtree(tmp, ignore_errors=True)


#: What the daemons import, with QUIC kept out as the command line does (github_p2p.p2p.noquic),
#: and the MCP surface (loaded on the first MCP request) when the mcp extra is installed.
WARM_UP = ("import importlib.util\n"
           "from github_p2p.p2p.noquic import keep_quic_unloaded; keep_quic_unloaded()\n"
           "import github_p2p.cli.main, github_p2p.cli.commands, github_p2p.nodes.peer, "
           "github_p2p.nodes.hub.node\n"
           "if importlib.util.find_spec('mcp') is not None:\n"
           "    import github_p2p.mcp.server, github_p2p.cli.mcp\n")


def warm_bytecode(venv: Path, log: IO[str]) -> float:
    """Write the bytecode a daemon start needs into ``venv`` (see the module docstring);
    returns the seconds it took."""
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    python = str(venv / "bin" / "python")
    package = subprocess.run([python, "-c", "import github_p2p, os; "
                              "print(os.path.dirname(github_p2p.__file__))"],
                             capture_output=True, text=True, env=env, timeout=120, check=True)
    _run([python, "-m", "compileall", "-q", "-j", "0", package.stdout.strip()], env, log)
    _run([python, "-c", WARM_UP], env, log)
    return time.monotonic() - started


def with_extras(spec: str, extras: tuple[str, ...]) -> str:
    """``github-p2p==0.3.0`` → ``github-p2p[fleet]==0.3.0``; other specs stay as they are."""
    match = re.fullmatch(r"(github[-_.]p2p)(\s*(?:[<>=!~].*)?)", spec.strip(), re.I)
    if match is None or not extras:
        return spec
    return f"{match.group(1)}[{','.join(extras)}]{match.group(2)}"


def _move_into_place(tmp: Path, venv: Path, key: str) -> None:
    if is_ready(venv, key):
        return  # another job on this machine finished first: keep its environment
    if venv.exists():  # a leftover without a valid marker
        aside = venv.with_name(f".{venv.name}.old-{os.getpid()}")
        os.rename(venv, aside)
        shutil.rmtree(aside, ignore_errors=True)
    try:
        os.rename(tmp, venv)
    except OSError:
        if not is_ready(venv, key):
            raise
