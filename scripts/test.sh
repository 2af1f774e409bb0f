#!/usr/bin/env bash
# The README's test command: build the wheel, install it non-editable in a fresh venv, run the whole suite against
# it (fast and slow tests), then the compatibility subset against the oldest supported ultralytics (the lower bound
# of the dependency declared in pyproject.toml, read back from the installed wheel's metadata), then, on a full run
# that has taken less than HEAVY_BUDGET_S (default 1800 s, half of CI's 45-minute aim), the heavy export tests
# (PaddlePaddle, ExecuTorch, TensorFlow SavedModel and its TFLite) after installing the `test-heavy` extra. Extra
# arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"` (which also skips the heavy step).
EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT/tests"  # not the repo root: the tests must import the installed package, not the checkout
export ULTRALYTICS_TRIPLET_TEST_WHEEL=1 OMP_NUM_THREADS=2
PYTEST=("$VENV/bin/python" -m pytest -p no:cacheprovider -ra --durations=5)
NEWEST=$("$VENV/bin/python" -c 'import ultralytics; print(ultralytics.__version__)')

START=$SECONDS

echo "== suite against ultralytics $NEWEST"
ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST "${PYTEST[@]}" -m "not heavy" "$@"

# The oldest supported release, from the one declaration in pyproject.toml (installed beside the newest, same torch).
OLDEST=$("$VENV/bin/python" -c 'from ultralytics_triplet.patch import oldest_supported; print(oldest_supported())')
[ -n "$OLDEST" ] || { echo "pyproject.toml declares no 'ultralytics>=X.Y.Z' lower bound: add one" >&2; exit 1; }
echo "== compatibility subset against ultralytics $OLDEST"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$WORK/ultralytics-$OLDEST" \
    "ultralytics==$OLDEST"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check tqdm pandas seaborn py-cpuinfo  # 8.3.0's extra needs
PYTHONPATH="$WORK/ultralytics-$OLDEST" ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$OLDEST "${PYTEST[@]}" \
    test_registration.py test_startup.py test_placements.py test_e2e.py test_reliability.py test_cli.py \
    test_compare.py test_visualize.py test_weights.py test_study.py \
    -m "not heavy" -k "not export and not ray" "$@"

if (( $# > 0 )); then
    echo "== heavy export tests skipped: pytest arguments were given"
elif (( SECONDS - START >= ${HEAVY_BUDGET_S:-1800} )); then
    echo "== heavy export tests skipped: the run took $((SECONDS - START)) s, over HEAVY_BUDGET_S=${HEAVY_BUDGET_S:-1800}"
else
    echo "== heavy export tests (after $((SECONDS - START)) s)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${WHEEL}[test-heavy]"
    ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS=$NEWEST "${PYTEST[@]}" -m heavy test_export.py
fi
