#!/usr/bin/env bash
# The README's test command. It builds the wheel and installs it non-editable in a fresh venv, then runs:
#   1. ruff on the checkout, and `mkdocs build --strict` of the docs (a broken link fails);
#   2. the whole suite against the installed wheel, the newest ultralytics pip finds and the torch pip resolves;
#   3. the tests marked `compat` against the oldest supported ultralytics (the lower bound of the dependency declared
#      in pyproject.toml, read back from the installed wheel's metadata);
#   4. the unit tests under the oldest and the newest Python the package declares (its classifiers), each in a venv
#      of its own, built after step 3 and removed after its tests, one at a time so that the run never holds more than
#      two torch installs (~6 GB each) on disk; the newest Python's venv gets the newest torch release on the index
#      (pip's configured constraints set aside there; NEWEST_TORCH=0 keeps them). A Python this machine lacks is
#      skipped with one line;
#   5. on a full run that has taken less than HEAVY_BUDGET_S (default 1800 s), the heavy export tests (PaddlePaddle,
#      ExecuTorch, TensorFlow SavedModel and its TFLite) after installing the `test-heavy` extra.
# Each step says which Python, torch and ultralytics it ran, and the run ends with a summary of them. Extra arguments
# go to pytest, e.g. `bash scripts/test.sh -m "not slow"` (which also skips the heavy step). The user's ultralytics
# settings file must be byte-identical at the end, or the run fails.
EXTRAS="[test]"
USER_SETTINGS="${YOLO_CONFIG_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/Ultralytics}/settings.json"
settings_state() { if [ -f "$USER_SETTINGS" ]; then sha256sum < "$USER_SETTINGS"; else echo "absent"; fi; }
SETTINGS_BEFORE=$(settings_state)
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"  # from here on YOLO_CONFIG_DIR is a throw-away directory
source "$(dirname "${BASH_SOURCE[0]}")/_pythons.sh"
SUMMARY=()
finish() {
    local status=$?
    if (( ${#SUMMARY[@]} )); then
        echo "== steps run (status $status):"
        printf '   %s\n' "${SUMMARY[@]}"
    fi
    rm -rf "$WORK"
    if [ "$(settings_state)" != "$SETTINGS_BEFORE" ]; then
        echo "== FAILED: the run changed the user's ultralytics settings ($USER_SETTINGS)" >&2
        status=1
    fi
    exit $status
}
trap finish EXIT

# Step 4's Pythons, found now so that a missing one is said at the start.
read -r OLDEST_PY NEWEST_PY <<< "$(declared_pythons)"
[ -n "$OLDEST_PY" ] || { echo "the wheel declares no 'Programming Language :: Python :: 3.X' classifier" >&2; exit 1; }
MATRIX=()
for py in $(printf '%s\n' "$OLDEST_PY" "$NEWEST_PY" | uniq); do
    interpreter=$(find_python "$py")
    if [ -z "$interpreter" ]; then
        echo "== Python $py: skipped, no interpreter found (python$py on PATH, pyenv's versions, /usr/bin)"
        SUMMARY+=("Python $py unit tests: skipped, no interpreter found")
        continue
    fi
    MATRIX+=("$py:$interpreter")
done

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

STEP="suite: $(versions "$VENV/bin/python")"
echo "== $STEP"
YOLO_CONFIG_DIR="$WORK/settings-newest" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST \
    "${PYTEST[@]}" -m "$(select_tests "not heavy")" "${REST[@]}"
SUMMARY+=("$STEP: passed ($((SECONDS - START)) s)")

# The oldest supported release, from the one declaration in pyproject.toml (installed beside the newest, same torch).
OLDEST=$("$VENV/bin/python" -c 'from ultralytics_triplet._compat import oldest_supported; print(oldest_supported())')
[ -n "$OLDEST" ] || { echo "pyproject.toml declares no 'ultralytics>=X.Y.Z' lower bound: add one" >&2; exit 1; }
T=$SECONDS
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$WORK/ultralytics-$OLDEST" \
    "ultralytics==$OLDEST"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check tqdm pandas seaborn py-cpuinfo scipy  # 8.3.0's needs
STEP="tests marked compat: $(PYTHONPATH="$WORK/ultralytics-$OLDEST" versions "$VENV/bin/python")"
echo "== $STEP"
# 8.3.0's Ray Tune callback calls a Ray function that current Ray releases no longer have, which fails every training
# (plain models too) once ray[tune] is installed: turn that callback off in this step's settings, as a user would.
YOLO_CONFIG_DIR="$WORK/settings-oldest" PYTHONPATH="$WORK/ultralytics-$OLDEST" "$VENV/bin/python" -c \
    'from ultralytics.utils import SETTINGS; SETTINGS.update(raytune=False)'
YOLO_CONFIG_DIR="$WORK/settings-oldest" PYTHONPATH="$WORK/ultralytics-$OLDEST" \
    ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$OLDEST "${PYTEST[@]}" -m "$(select_tests "compat and not newest_only and not heavy")" \
    "${REST[@]}"
SUMMARY+=("$STEP: passed ($((SECONDS - T)) s)")

for entry in "${MATRIX[@]}"; do
    IFS=: read -r py interpreter <<< "$entry"
    T=$SECONDS
    newest_torch=0
    if [ "$py" = "$NEWEST_PY" ] && [ "${NEWEST_TORCH:-1}" = 1 ]; then newest_torch=1; fi
    echo "== Python $py ($interpreter): building its venv ($(free_space "$WORK") free)"
    mkdir -p "$WORK/py$py"
    if ! (prepare_python "$interpreter" "$WORK/py$py" "$newest_torch") > "$WORK/py$py/install.log" 2>&1; then
        echo "== Python $py: building its venv failed ($(free_space "$WORK") free); the end of its log:" >&2
        tail -n 30 "$WORK/py$py/install.log" >&2
        exit 1
    fi
    python="$WORK/py$py/venv/bin/python"
    torch_note=""
    if [ "$newest_torch" = 1 ]; then torch_note=" (the newest on the index: pip constraints set aside)"; fi
    STEP="unit tests: $(versions "$python")$torch_note"
    echo "== $STEP"
    installed=$("$python" -c 'import ultralytics; print(ultralytics.__version__)')
    YOLO_CONFIG_DIR="$WORK/settings-py$py" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$installed \
        "$python" -m pytest -p no:cacheprovider -ra -q -m "$(select_tests "not heavy")" unit "${REST[@]}"
    SUMMARY+=("$STEP: passed ($((SECONDS - T)) s)")
    rm -rf "$WORK/py$py"
done

if (( ARGC > 0 )); then
    echo "== heavy export tests skipped: pytest arguments were given"
    SUMMARY+=("heavy export tests: skipped (pytest arguments were given)")
elif (( SECONDS - START >= ${HEAVY_BUDGET_S:-1800} )); then
    echo "== heavy export tests skipped: the run took $((SECONDS - START)) s, over HEAVY_BUDGET_S=${HEAVY_BUDGET_S:-1800}"
    SUMMARY+=("heavy export tests: skipped (over HEAVY_BUDGET_S)")
else
    echo "== heavy export tests (after $((SECONDS - START)) s)"
    T=$SECONDS
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[test-heavy]"
    STEP="heavy export tests: $(versions "$VENV/bin/python")"
    YOLO_CONFIG_DIR="$WORK/settings-newest" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST \
        "${PYTEST[@]}" -m heavy integration/test_export.py
    SUMMARY+=("$STEP: passed ($((SECONDS - T)) s)")
fi
