#!/usr/bin/env bash
# Step 2 of the composite action: install github-p2p into a private virtual environment.
#
# What is slow on a cold runner is not downloading wheels but building the dependencies that
# have none: fastecdsa (a libp2p dependency) compiles against GMP, which needs libgmp-dev and a
# compiler. So the wheelhouse that actions/cache keeps (under a literal key) holds the wheels
# built from source plus the uv wheel: a warm run needs neither apt nor a compiler, and uv
# fetches the ordinary wheels from the index in a few seconds. pip is the fallback when uv
# cannot be had. On a cold run the built wheels are harvested from the installer's own cache.
#
# Environment: STATE_DIR, GP_PYTHON_BIN, GP_SOURCE, GP_WHEELHOUSE, GP_INSTALL, FAIL_ON_ERROR.
# Output: bin (the github-p2p executable).
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

[ -n "${STATE_DIR:-}" ] && [ ! -f "$STATE_DIR/failed" ] || exit 0

bin_dir="$STATE_DIR/bin"
mkdir -p "$bin_dir"

if ! gp_truthy "${GP_INSTALL:-true}"; then
  exe="$(command -v github-p2p || true)"
  [ -n "$exe" ] || gp_soft_fail "github-p2p is not on PATH (install-source: preinstalled)"
  echo "Using the preinstalled $exe"
  gp_output bin "$exe"
  exit 0
fi

python="${GP_PYTHON_BIN:?}"
venv="$STATE_DIR/venv"
wheelhouse="${GP_WHEELHOUSE:?}"
source_spec="${GP_SOURCE:?}"
log="$STATE_DIR/install.log"
# Private caches: what they hold after a cold install is exactly what this install built.
export UV_CACHE_DIR="$STATE_DIR/uv-cache" PIP_CACHE_DIR="$STATE_DIR/pip-cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_PROGRESS=1
started=$SECONDS
: >"$log"

have_gmp() {
  local dir
  for dir in /usr/include /usr/include/*-linux-gnu /usr/local/include /opt/homebrew/include; do
    [ -e "$dir/gmp.h" ] && return 0
  done
  return 1
}

# libgmp-dev and a compiler, for building fastecdsa; only a cold wheelhouse needs them.
ensure_build_deps() {
  local missing=()
  have_gmp || missing+=(libgmp-dev)
  command -v cc >/dev/null 2>&1 || missing+=(gcc)
  [ ${#missing[@]} -gt 0 ] || return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "No apt-get: cannot install ${missing[*]}; building fastecdsa may fail"
    return 0
  fi
  echo "Installing build dependencies: ${missing[*]}"
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
    --no-install-recommends "${missing[@]}")
  gp_sudo "${install[@]}" >>"$log" 2>&1 \
    || { gp_sudo apt-get update -qq >>"$log" 2>&1 && gp_sudo "${install[@]}" >>"$log" 2>&1; } \
    || echo "Could not install ${missing[*]} (see $log); building fastecdsa may fail"
}

# extract_uv WHEEL: the uv binary out of its wheel (a zip) into $STATE_DIR/uv/.
extract_uv() {
  mkdir -p "$STATE_DIR/uv"
  "$python" - "$1" "$STATE_DIR/uv/uv" <<'EOF'
import os, sys, zipfile
wheel, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.endswith(".data/scripts/uv"):
            with open(dest, "wb") as out:
                out.write(archive.read(name))
            os.chmod(dest, 0o755)
            sys.exit(0)
sys.exit(1)
EOF
}

# find_uv: uv from PATH, from the wheelhouse, or freshly downloaded (kept for the wheelhouse).
find_uv() {
  local whl
  if command -v uv >/dev/null 2>&1; then
    command -v uv
    return 0
  fi
  whl="$(find "$wheelhouse" -maxdepth 1 -name 'uv-*.whl' 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$whl" ]; then
    mkdir -p "$STATE_DIR/downloads"
    "$python" -m pip download -q --only-binary :all: --no-deps -d "$STATE_DIR/downloads" uv \
      >>"$log" 2>&1 || return 1
    whl="$(find "$STATE_DIR/downloads" -maxdepth 1 -name 'uv-*.whl' | head -n 1)"
  fi
  [ -n "$whl" ] && extract_uv "$whl" >>"$log" 2>&1 && echo "$STATE_DIR/uv/uv"
}

# install_pkg: github-p2p into the venv, taking the built wheels from the wheelhouse.
install_pkg() {
  local links=()
  [ -d "$wheelhouse" ] && links=(--find-links "$wheelhouse")
  if [ -n "$uv" ]; then
    "$uv" pip install --python "$venv/bin/python" "${links[@]}" "$source_spec" >>"$log" 2>&1
  else
    "$venv/bin/python" -m pip install -q "${links[@]}" "$source_spec" >>"$log" 2>&1
  fi
}

# The wheels this install built from source, plus uv's: renamed into place whole, because a
# half-filled wheelhouse must never be cached and parallel jobs on one host may race for it.
harvest_wheelhouse() {
  local tmp dir whl names=""
  mkdir -p "$(dirname "$wheelhouse")"
  tmp="$(mktemp -d "$wheelhouse.tmp.XXXXXX")"
  for dir in "$UV_CACHE_DIR" "$PIP_CACHE_DIR" "$STATE_DIR/downloads"; do
    [ -d "$dir" ] || continue
    while IFS= read -r whl; do
      case "$(basename "$whl")" in github_p2p-*) continue ;; esac
      [ -e "$tmp/$(basename "$whl")" ] && continue
      cp "$whl" "$tmp/" && names="$names $(basename "$whl")"
    done < <(find "$dir" -name '*.whl' -type f)
  done
  echo "Wheelhouse for the next runs:${names:- (empty)}"
  touch "$tmp/.complete"
  # A parallel job may have won the race: keep its wheelhouse.
  if [ -e "$wheelhouse" ] || ! mv "$tmp" "$wheelhouse" 2>/dev/null; then
    rm -rf "$tmp"
  fi
}

echo "::group::github-p2p: install"
warm=false
[ -f "$wheelhouse/.complete" ] && warm=true
uv="$(find_uv || true)"
if [ -n "$uv" ]; then
  "$python" -m venv --without-pip "$venv" >>"$log" 2>&1 || true
else
  "$python" -m venv "$venv" >>"$log" 2>&1 || true
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "::endgroup::"
  tail -n 20 "$log"
  gp_soft_fail "could not create a virtual environment with $python"
fi
echo "wheelhouse: $wheelhouse (warm: $warm); installer: ${uv:-pip}"

$warm || ensure_build_deps
installed=false
if install_pkg; then
  installed=true
elif $warm; then
  # A dependency the wheelhouse does not cover may need compiling after all.
  ensure_build_deps
  install_pkg && installed=true
fi
if $installed && ! $warm; then
  harvest_wheelhouse
fi
echo "::endgroup::"

if ! $installed || [ ! -x "$venv/bin/github-p2p" ]; then
  echo "::group::github-p2p: install log (tail)"
  tail -n 40 "$log"
  echo "::endgroup::"
  gp_soft_fail "could not install github-p2p from $source_spec"
fi

# Only the command goes on PATH, not the venv's python: later steps keep their own Python.
ln -sf "$venv/bin/github-p2p" "$bin_dir/github-p2p"
echo "Installed github-p2p in $((SECONDS - started)) s ($([ -n "$uv" ] && echo uv || echo pip), warm wheelhouse: $warm)"
gp_output bin "$venv/bin/github-p2p"
