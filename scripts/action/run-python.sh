#!/usr/bin/env bash
# run-python.sh SCRIPT: run one of the action's Python entry scripts with the interpreter the
# prepare step chose (GP_PYTHON_BIN), else python3 or python from PATH. Without any Python the
# fleet cannot run: the start step reports status degraded, the others say so, and the job
# goes on (unless fail-on-error is true).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for py in "${GP_PYTHON_BIN:-}" python3 python; do
  if [ -n "$py" ] && command -v "$py" >/dev/null 2>&1; then
    exec "$py" "$here/$1"
  fi
done
message="no Python interpreter to run github-p2p ($1)"
if [ "$1" = start.py ] && [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "status=degraded" >>"$GITHUB_OUTPUT"
fi
case "${FAIL_ON_ERROR:-false}" in
  true | True | TRUE | yes | 1 | on)
    echo "::error title=github-p2p::$message"
    exit 1 ;;
esac
echo "::warning title=github-p2p::$message; continuing without the fleet cache (direct GitHub API)"
exit 0
