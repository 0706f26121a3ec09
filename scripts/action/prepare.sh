#!/usr/bin/env bash
# Step 1 of the composite action: mask the secrets, resolve ports, directories and the Python
# interpreter, and compute the wheelhouse cache key from literal values (hashFiles() only sees
# the workspace, not the action's own directory).
#
# Environment (from the action's inputs): GP_SECRET, GP_BOOTSTRAP_PEERS, GP_PORT, GP_HTTP_PORT,
# GP_CACHE_DIR, GP_PYTHON, GP_INSTALL_SOURCE, GP_ARCH (runner.arch), FAIL_ON_ERROR.
# Outputs: state-dir, port, http-port, cache-dir, python, python-version, install, wheelhouse,
# cache-key, source.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

# Mask first, before anything can echo them. Secrets passed from `secrets.*` are masked by the
# runner already; a value that came from a variable or a literal is not.
mask_words() {
  local word
  while IFS= read -r word; do
    [ -n "$word" ] && printf '::add-mask::%s\n' "$word"
  done < <(printf '%s\n' "$1" | tr -s ', \t' '\n')
  return 0
}
if [ -n "${GP_SECRET:-}" ]; then
  while IFS= read -r line; do
    [ -n "$line" ] && printf '::add-mask::%s\n' "$line"
  done <<<"$GP_SECRET"
fi
mask_words "${GP_BOOTSTRAP_PEERS:-}"

default_port() {
  case "${GP_ARCH:-}" in
    X64) echo 9000 ;;
    ARM64) echo 9001 ;;
    *) echo 9002 ;;
  esac
}

valid_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }

port="${GP_PORT:-}"
[ -n "$port" ] || port="$(default_port)"
state_name="$port"
valid_port "$port" || state_name=invalid
STATE_DIR="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/github-p2p-$state_name"
export STATE_DIR

# One daemon per port per job: a live pid here means the action already ran on this port.
if [ -f "$STATE_DIR/peer.pid" ]; then
  old_pid="$(cat "$STATE_DIR/peer.pid" 2>/dev/null || true)"
  if [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null \
    && ! grep -q '^State:[[:space:]]*Z' "/proc/$old_pid/status" 2>/dev/null; then
    gp_output state-dir ""
    STATE_DIR="" gp_soft_fail "a github-p2p daemon of this job already runs on port $port (pid $old_pid); run the stop action first or choose another port"
  fi
fi
rm -rf "$STATE_DIR"
mkdir -p "$STATE_DIR"
# Output the state directory first: the later steps read its "failed" marker.
gp_output state-dir "$STATE_DIR"

valid_port "$port" || gp_soft_fail "input port is not a TCP port: '$port'"
http_port="${GP_HTTP_PORT:-}"
if [ -z "$http_port" ]; then
  # 9000/9001/9002 -> 8700/8701/8702: the HTTP endpoint sits 300 below the libp2p port.
  if [ "$port" -gt 1324 ]; then http_port=$((port - 300)); else http_port=$((port + 1000)); fi
fi
valid_port "$http_port" || gp_soft_fail "input http-port is not a TCP port: '$http_port'"
[ "$http_port" != "$port" ] || gp_soft_fail "port and http-port must differ (both $port)"

cache_dir="${GP_CACHE_DIR:-$STATE_DIR/cache}"

# --- Python ---------------------------------------------------------------------------------
py_version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

find_python() {
  local want="$1" cand arch_dir
  case "$want" in
    "" | system)
      for cand in python3 python; do
        if command -v "$cand" >/dev/null 2>&1; then command -v "$cand"; return 0; fi
      done
      return 1 ;;
    */*)
      [ -x "$want" ] && { echo "$want"; return 0; }
      return 1 ;;
  esac
  [[ "$want" =~ ^3\.[0-9]+$ ]] || return 1
  # The hosted images keep several Pythons in the tool cache (setup-python's layout); using
  # them directly avoids a nested remote action.
  if [ -n "${RUNNER_TOOL_CACHE:-}" ] && [ -d "$RUNNER_TOOL_CACHE/Python" ]; then
    arch_dir="$(printf '%s' "${GP_ARCH:-x64}" | tr '[:upper:]' '[:lower:]')"
    cand="$(find "$RUNNER_TOOL_CACHE/Python" -mindepth 4 -maxdepth 4 \
      -path "$RUNNER_TOOL_CACHE/Python/$want.*/$arch_dir/bin/python3" 2>/dev/null \
      | sort -V | tail -n 1)"
    [ -n "$cand" ] && [ -x "$cand" ] && { echo "$cand"; return 0; }
  fi
  if command -v "python$want" >/dev/null 2>&1 \
    && [ "$(py_version_of "python$want")" = "$want" ]; then
    command -v "python$want"
    return 0
  fi
  return 1
}

want_python="${GP_PYTHON:-3.11}"
if ! python="$(find_python "$want_python")"; then
  python="$(find_python system || true)"
  [ -n "$python" ] || gp_soft_fail "no Python interpreter found (python: '$want_python')"
  echo "Python '$want_python' not found; using $python ($(py_version_of "$python"))"
fi
py_version="$(py_version_of "$python" || true)"
[ -n "$py_version" ] || gp_soft_fail "Python interpreter $python does not run"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  gp_soft_fail "github-p2p needs Python >= 3.10, found $py_version at $python (set input python)"
fi

# --- install source and cache key -----------------------------------------------------------
# sha256sum is GNU-only; the chosen Python is everywhere this action can run.
short_hash() {
  "$python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:12])'
}

source_spec="${GP_INSTALL_SOURCE:-}"
[ -n "$source_spec" ] || source_spec="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/../.." && pwd)}"
install=true
wheelhouse=""
cache_key=""
if [ "$source_spec" = preinstalled ]; then
  install=false
  command -v github-p2p >/dev/null 2>&1 \
    || gp_soft_fail "install-source is 'preinstalled' but github-p2p is not on PATH"
else
  if [ -f "$source_spec/pyproject.toml" ]; then
    pkg_version="$(sed -n 's/^version[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
      "$source_spec/pyproject.toml" | head -n 1)"
    spec_hash="$(short_hash <"$source_spec/pyproject.toml")"
  else
    pkg_version="spec"
    spec_hash="$(printf '%s' "$source_spec" | short_hash)"
  fi
  cache_key="github-p2p-wheels-v1-${RUNNER_OS:-Linux}-${GP_ARCH:-unknown}-py${py_version}-${pkg_version:-0}-${spec_hash}"
  wheelhouse="${XDG_CACHE_HOME:-$HOME/.cache}/github-p2p/wheelhouse/$cache_key"
fi

echo "port=$port http-port=$http_port python=$python ($py_version) install=$install"
gp_output port "$port"
gp_output http-port "$http_port"
gp_output cache-dir "$cache_dir"
gp_output python "$python"
gp_output python-version "$py_version"
gp_output install "$install"
gp_output source "$source_spec"
gp_output wheelhouse "$wheelhouse"
gp_output cache-key "$cache_key"
