#!/usr/bin/env bash
# The README's test command: build the wheel, install it non-editable in a fresh venv, run the whole suite against
# it (fast and slow tests). Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
EXTRAS="[test]"
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT/tests"  # not the repo root: the tests must import the installed package, not the checkout
ULTRALYTICS_TRIPLET_TEST_WHEEL=1 OMP_NUM_THREADS=2 "$VENV/bin/python" -m pytest -p no:cacheprovider -ra --durations=10 "$@"
