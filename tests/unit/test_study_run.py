"""One training run of a study (``ultralytics_triplet.study.run``): what it reads of ultralytics' ``results.csv``."""

from __future__ import annotations

import pytest

from ultralytics_triplet import _compat
from ultralytics_triplet.study.run import read_results_csv, train_seconds, trained_rows

pytestmark = pytest.mark.compat

T = _compat.TIME_COLUMN


def results(tmp_path, *rows: tuple[float, ...]):
    """The rows of a results.csv (epoch, time, mAP50) as ultralytics writes it, read back."""
    path = tmp_path / "results.csv"
    path.write_text(f"epoch, {T}, metrics/mAP50(B)\n" + "".join(", ".join(map(str, r)) + "\n" for r in rows))
    return read_results_csv(path)


def test_results_time_column_sums_over_resumed_sessions(tmp_path):
    rows = results(tmp_path, (1, 10.0, 0.1), (2, 20.0, 0.2), (3, 5.0, 0.3))
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]
    assert train_seconds(rows) == 25.0
    assert train_seconds([{"epoch": 1.0}]) is None  # no time column: ultralytics 8.3


def test_an_epoch_trained_again_after_a_resume_counts_once_with_its_later_row(tmp_path):
    # Epoch 2's row was written, then the interrupt came before last.pt held epoch 2: the resume trained it again.
    rows = results(tmp_path, (1, 10.0, 0.1), (2, 21.0, 0.2), (2, 12.0, 0.25), (3, 23.0, 0.3))
    kept = trained_rows(rows)
    assert [r["epoch"] for r in kept] == [1.0, 2.0, 3.0]  # 3 epochs, from 4 rows
    assert [r["metrics/mAP50(B)"] for r in kept] == [0.1, 0.25, 0.3]  # the row the finished model continued from
    assert train_seconds(rows) == 10.0 + 12.0 + 11.0  # the lost 11 s of the first epoch 2 are not training time


def test_a_retrained_epoch_starts_a_session_even_when_the_clock_does_not_go_back(tmp_path):
    # The second session's first epoch took longer (a busy machine) than the whole first session had run.
    rows = results(tmp_path, (1, 10.0, 0.1), (2, 21.0, 0.2), (2, 30.0, 0.25), (3, 41.0, 0.3))
    assert [r["metrics/mAP50(B)"] for r in trained_rows(rows)] == [0.1, 0.25, 0.3]
    assert train_seconds(rows) == 10.0 + 30.0 + 11.0


def test_a_noted_resume_starts_a_session_where_neither_clock_nor_epoch_goes_back(tmp_path):
    # Interrupted right after last.pt held epoch 1; the resumed epoch 2 took 12 s, more than the first session's 10 s.
    rows = results(tmp_path, (1, 10.0, 0.1), (2, 12.0, 0.2), (3, 23.0, 0.3))
    assert train_seconds(rows, starts=[1]) == 10.0 + 12.0 + 11.0
    assert train_seconds(rows) == 23.0  # what the file alone says: one session
    assert train_seconds(rows, starts=[1, 1, 3]) == 33.0  # a resume that wrote no row changes nothing


def test_the_rows_come_in_file_order_and_rows_without_an_epoch_are_left_out(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(f"epoch,{T},loss\n2,5.0,0.2\n1,9.0,0.1\nbroken,1.0,0.3\n")
    assert [r["epoch"] for r in read_results_csv(path)] == [2.0, 1.0]
    assert [r["epoch"] for r in trained_rows(read_results_csv(path))] == [1.0, 2.0]
    path.write_text("loss\n0.2\n")
    assert read_results_csv(path) == [] and trained_rows([]) == []
    assert read_results_csv(tmp_path / "missing.csv") == []
