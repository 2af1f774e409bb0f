"""``ultralytics_triplet.measure``: the timing core the comparison, the study and the benchmarks share."""

from __future__ import annotations

import itertools

import pytest

from ultralytics_triplet.measure import interleaved

pytestmark = pytest.mark.compat


def test_interleaved_runs_the_functions_in_turn_and_times_them_by_the_clock_it_is_given():
    calls, ticks = [], itertools.count()
    fns = {k: (lambda k=k: calls.append(k)) for k in ("a", "b")}
    times = interleaved(fns, rounds=3, min_round_ms=0, warmup=1, clock=lambda: next(ticks))  # 1 s per reading
    assert calls == ["a", "b"] * 4  # one warm-up round, three timed ones
    assert times == {"a": [1000.0] * 3, "b": [1000.0] * 3}
