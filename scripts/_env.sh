# Sourced by demo.sh: build the wheel and install it into a fresh virtual environment in a temporary
# directory that is removed on exit (a venv with torch is ~5.5 GB; TMPDIR chooses where). Sets ROOT, WORK and VENV.
# Every ultralytics process started from here reads and writes its settings in a throw-away directory under WORK
# (YOLO_CONFIG_DIR), never the user's own settings.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ultralytics-triplet.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV="$WORK/venv"
export YOLO_CONFIG_DIR="$WORK/ultralytics-settings"
# Free space on the file system that holds DIR, e.g. "74.2 GB".
free_space() { df -Pk "$1" | awk 'NR == 2 { printf "%.1f GB", $4 / 1048576 }'; }
echo "== setting up a fresh environment in $WORK (removed on exit; $(free_space "$WORK") free there)"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/ultralytics_triplet-*.whl)
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}${EXTRAS:-}"; then
    echo "== installing $(basename "$WHEEL")${EXTRAS:-} failed ($(free_space "$WORK") free in $WORK)" >&2
    exit 1
fi
# The last line: ultralytics' first import in a fresh settings folder prints a note of its own first.
echo "== installed $(basename "$WHEEL") with $("$VENV/bin/python" -c 'import torch, ultralytics; print(f"ultralytics {ultralytics.__version__}, torch {torch.__version__}")' | tail -n 1)"
