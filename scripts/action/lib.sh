# shellcheck shell=bash
# Helpers shared by the composite action's bash steps. Sourced, never executed.
#
# The action must never break a job because the fleet is unavailable: a problem becomes a
# ::warning:: and a "failed" marker in the state directory, which the later steps read to skip
# their work and report status "degraded". Only fail-on-error: true turns it into a failure.

gp_truthy() {
  case "${1,,}" in
    true | yes | 1 | on) return 0 ;;
    *) return 1 ;;
  esac
}

# Workflow commands need '%', CR and LF escaped in their message.
gp_escape() {
  local s="$1"
  s="${s//'%'/'%25'}"
  s="${s//$'\r'/'%0D'}"
  s="${s//$'\n'/'%0A'}"
  printf '%s' "$s"
}

gp_notice() { printf '::notice title=github-p2p::%s\n' "$(gp_escape "$1")"; }
gp_warning() { printf '::warning title=github-p2p::%s\n' "$(gp_escape "$1")"; }
gp_error() { printf '::error title=github-p2p::%s\n' "$(gp_escape "$1")"; }

# gp_output NAME VALUE: a step output (single-line values only).
gp_output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
  else
    printf 'output %s=%s\n' "$1" "$2"
  fi
}

# gp_soft_fail MESSAGE: stop this step; a warning (or an error with fail-on-error).
# Requires STATE_DIR; leaves STATE_DIR/failed for the later steps.
gp_soft_fail() {
  local message="$1"
  if [ -n "${STATE_DIR:-}" ]; then
    mkdir -p "$STATE_DIR"
    printf '%s\n' "$message" >"$STATE_DIR/failed"
  fi
  if gp_truthy "${FAIL_ON_ERROR:-false}"; then
    gp_error "$message"
    exit 1
  fi
  gp_warning "$message (continuing without the fleet cache: direct GitHub API)"
  exit 0
}

gp_sudo() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    return 1
  fi
}
