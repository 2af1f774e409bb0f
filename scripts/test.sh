#!/usr/bin/env bash
# The README's test command: brings the test runner (nox) into a throw-away virtual environment and runs every session
# of noxfile.py, in its order: lint (ruff, mkdocs build --strict), the suite against the newest ultralytics, the unit
# tests under the oldest declared Python, the compat tests against the oldest supported ultralytics, the unit tests
# under the newest declared Python, the heavy exports. noxfile.py says what each session installs and tests; here
# TEST_PREBUILD=1 lets a later session install while an earlier one tests. A fresh clone needs only python3 (3.10 or
# later, as nox needs; PYTHON=... picks another, which also runs the lint, suite, compat and heavy sessions) and the
# package registries.
#
# Arguments go to pytest and narrow each session's own selection, e.g. `bash scripts/test.sh -m "not slow"` or
# `-k test_packaging`. Everything is built under one temporary folder (TMPDIR chooses where), removed on exit. The run
# ends with a line per session (its Python, torch and ultralytics, and how it went), and fails if it changed the
# user's ultralytics settings file.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NOX="nox==2026.8.17"

USER_SETTINGS="${YOLO_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/Ultralytics}/settings.json"
settings_state() { if [ -f "$USER_SETTINGS" ]; then sha256sum < "$USER_SETTINGS"; else echo "absent"; fi; }
SETTINGS_BEFORE=$(settings_state)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ultralytics-triplet.XXXXXX")
export YOLO_CONFIG_DIR="$WORK/ultralytics-settings"  # a throw-away one for anything that is not in a session
export TEST_SUMMARY="$WORK/summary.txt" TEST_PREBUILD=1

finish() {
    local status=$?
    if [ -s "$TEST_SUMMARY" ]; then
        echo "== sessions (status $status):"
        sed 's/^/   /' "$TEST_SUMMARY"
    fi
    rm -rf "$WORK"
    if [ "$(settings_state)" != "$SETTINGS_BEFORE" ]; then
        echo "== FAILED: the run changed the user's ultralytics settings ($USER_SETTINGS)" >&2
        status=1
    fi
    exit "$status"
}
trap finish EXIT

echo "== installing $NOX in $WORK (removed on exit; $(df -Pk "$WORK" | awk 'NR == 2 { printf "%.1f GB", $4 / 1048576 }') free there)"
"${PYTHON:-python3}" -m venv "$WORK/runner"
"$WORK/runner/bin/python" -m pip install -q --disable-pip-version-check "$NOX"
cd "$ROOT"
"$WORK/runner/bin/nox" --noxfile "$ROOT/noxfile.py" --envdir "$WORK/nox" -- "$@"
