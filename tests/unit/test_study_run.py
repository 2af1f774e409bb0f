"""One training run of a study (``ultralytics_triplet.study.run``): what it reads of ultralytics' ``results.csv``."""

from __future__ import annotations

import pytest

from ultralytics_triplet import _compat
from ultralytics_triplet.study.run import read_results_csv, train_seconds

pytestmark = pytest.mark.compat


def test_results_time_column_sums_over_resumed_sessions(tmp_path):
    csv = tmp_path / "results.csv"
    csv.write_text(f"epoch, {_compat.TIME_COLUMN}, metrics/mAP50(B)\n1, 10.0, 0.1\n2, 20.0, 0.2\n3, 5.0, 0.3\n")
    rows = read_results_csv(csv)
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]
    assert train_seconds(rows) == 25.0
    assert train_seconds([{"epoch": 1.0}]) is None  # no time column: ultralytics 8.3
