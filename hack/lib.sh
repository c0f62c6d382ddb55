# shellcheck shell=bash
# Shared by hack/up.sh and hack/down.sh (sourced, not run). The caller sets SCRIPT_NAME
# (for error messages) and BIN (the binary cache) first.

step() { printf '\n==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '%s: %s\n' "${SCRIPT_NAME}" "$*" >&2; exit 1; }

# The tool on PATH, else in the cache; empty when neither.
find_tool() {
  if command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  elif [[ -x "${BIN}/$1" ]]; then
    printf '%s\n' "${BIN}/$1"
  fi
}
