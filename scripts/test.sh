#!/usr/bin/env bash
# The README's test command. It builds the wheel and installs it non-editable in a fresh venv, then runs:
#   1. ruff on the checkout, and `mkdocs build --strict` of the docs (a broken link fails);
#   2. the whole suite against the installed wheel and the newest ultralytics pip finds;
#   3. the tests marked `compat` against the oldest supported ultralytics (the lower bound of the dependency declared
#      in pyproject.toml, read back from the installed wheel's metadata);
#   4. on a full run that has taken less than HEAVY_BUDGET_S (default 1800 s), the heavy export tests (PaddlePaddle,
#      ExecuTorch, TensorFlow SavedModel and its TFLite) after installing the `test-heavy` extra.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` (which also skips the heavy step). The
# user's ultralytics settings file must be byte-identical at the end, or the run fails.
EXTRAS="[test]"
USER_SETTINGS="${YOLO_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/Ultralytics}/settings.json"
settings_state() { if [ -f "$USER_SETTINGS" ]; then sha256sum < "$USER_SETTINGS"; else echo "absent"; fi; }
SETTINGS_BEFORE=$(settings_state)
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"  # from here on YOLO_CONFIG_DIR is a throw-away directory
finish() {
    local status=$?
    rm -rf "$WORK"
    if [ "$(settings_state)" != "$SETTINGS_BEFORE" ]; then
        echo "== FAILED: the run changed the user's ultralytics settings ($USER_SETTINGS)" >&2
        status=1
    fi
    exit $status
}
trap finish EXIT

echo "== ruff"
"$VENV/bin/ruff" check --no-cache "$ROOT"
echo "== docs: mkdocs build --strict"
"$VENV/bin/mkdocs" build --strict --quiet --config-file "$ROOT/mkdocs.yml" --site-dir "$WORK/site"

# A `-m EXPR` among the arguments narrows each step's own selection instead of replacing it.
ARGC=$# MARK="" REST=()
while (( $# )); do
    case "$1" in
        -m) MARK="$2"; shift 2 ;;
        *) REST+=("$1"); shift ;;
    esac
done
select_tests() { if [ -n "$MARK" ]; then echo "($MARK) and ($1)"; else echo "$1"; fi; }

cd "$ROOT/tests"  # not the repo root: the tests must import the installed package, not the checkout
export ULTRALYTICS_TRIPLET_TEST_WHEEL=1 OMP_NUM_THREADS=2
PYTEST=("$VENV/bin/python" -m pytest -p no:cacheprovider -ra --durations=5)
NEWEST=$("$VENV/bin/python" -c 'import ultralytics; print(ultralytics.__version__)')
START=$SECONDS

echo "== suite against ultralytics $NEWEST"
YOLO_CONFIG_DIR="$WORK/settings-newest" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST \
    "${PYTEST[@]}" -m "$(select_tests "not heavy")" "${REST[@]}"

# The oldest supported release, from the one declaration in pyproject.toml (installed beside the newest, same torch).
OLDEST=$("$VENV/bin/python" -c 'from ultralytics_triplet._compat import oldest_supported; print(oldest_supported())')
[ -n "$OLDEST" ] || { echo "pyproject.toml declares no 'ultralytics>=X.Y.Z' lower bound: add one" >&2; exit 1; }
echo "== tests marked compat against ultralytics $OLDEST"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$WORK/ultralytics-$OLDEST" \
    "ultralytics==$OLDEST"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check tqdm pandas seaborn py-cpuinfo scipy  # 8.3.0's needs
# 8.3.0's Ray Tune callback calls a Ray function that current Ray releases no longer have, which fails every training
# (plain models too) once ray[tune] is installed: turn that callback off in this step's settings, as a user would.
YOLO_CONFIG_DIR="$WORK/settings-oldest" PYTHONPATH="$WORK/ultralytics-$OLDEST" "$VENV/bin/python" -c \
    'from ultralytics.utils import SETTINGS; SETTINGS.update(raytune=False)'
YOLO_CONFIG_DIR="$WORK/settings-oldest" PYTHONPATH="$WORK/ultralytics-$OLDEST" \
    ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$OLDEST "${PYTEST[@]}" -m "$(select_tests "compat and not newest_only and not heavy")" \
    "${REST[@]}"

if (( ARGC > 0 )); then
    echo "== heavy export tests skipped: pytest arguments were given"
elif (( SECONDS - START >= ${HEAVY_BUDGET_S:-1800} )); then
    echo "== heavy export tests skipped: the run took $((SECONDS - START)) s, over HEAVY_BUDGET_S=${HEAVY_BUDGET_S:-1800}"
else
    echo "== heavy export tests (after $((SECONDS - START)) s)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[test-heavy]"
    YOLO_CONFIG_DIR="$WORK/settings-newest" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST \
        "${PYTEST[@]}" -m heavy integration/test_export.py
fi
