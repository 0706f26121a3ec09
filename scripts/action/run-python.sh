#!/usr/bin/env bash
# run-python.sh SCRIPT: run one of the action's Python entry scripts with the interpreter the
# prepare step chose (GP_PYTHON_BIN), else python3/python. Without any Python the fleet cannot
# run: report status degraded (the start step) or nothing (the stop step) and carry on.
set -uo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"
script="$(dirname "$0")/$1"
shift
for py in "${GP_PYTHON_BIN:-}" python3 python; do
  if [ -n "$py" ] && command -v "$py" >/dev/null 2>&1; then
    exec "$py" "$script" "$@"
  fi
done
case "$(basename "$script")" in
  start.py)
    gp_output status degraded
    gp_soft_fail "no Python interpreter to run the github-p2p daemon" ;;
  *)
    gp_warning "no Python interpreter: github-p2p statistics unavailable" ;;
esac
exit 0
