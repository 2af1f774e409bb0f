"""A study interrupted at each named point of a run (helpers.interrupt_at), then run again: what the user gets.

Each case starts from a finished 2-epoch study (plain yolov5n and its ``triplet`` placement, 2 seeds, 16 synthetic 64 px
images) with one run missing, so the study command trains that run alone. The interrupt lands at a named point of the
child process, not after a timed wait, so it lands there on a busy machine too. Then the command again: the run
resumes, is trained afresh or is validated again, and the study reports 2 epochs for every run.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from helpers import IMGSZ, cli, interrupt_at, run

from ultralytics_triplet import _compat
from ultralytics_triplet import run_study as study
from ultralytics_triplet.study.run import SESSIONS_FILE, read_results_csv

pytestmark = [pytest.mark.slow, pytest.mark.compat]  # but for the export case, marked newest_only

EPOCHS = 2
RUN = "yolov5n-triplet-seed1"  # the run each case takes away and trains again: a triplet checkpoint to resume
INTERRUPTED = "ultralytics-triplet: interrupted; run the same command again to resume the study in "
REPORT = ("study.txt", "study.csv", "study.png")


def command(data: Path, out: Path, *more: str) -> list[str]:
    """The study command of the finished study's settings."""
    return [*cli(), "study", "--data", str(data), "--model", "yolov5n.yaml", "--placements", "triplet", "--seeds", "2",
            "--epochs", str(EPOCHS), "--imgsz", str(IMGSZ), "--batch", "8", "--device", "cpu", "--workers", "0",
            "--latency-runs", "2", "--out", str(out), *more]


@pytest.fixture(scope="module")
def finished(shapes_data, tmp_path_factory) -> Path:
    """A finished study of the command's settings, trained once for the module."""
    out = tmp_path_factory.mktemp("finished") / "study"
    result = study(shapes_data, placements=["triplet"], out=out, model="yolov5n.yaml", seeds=2, epochs=EPOCHS,
                   imgsz=IMGSZ, batch=8, device="cpu", workers=0, latency_runs=2)
    assert (result.trained, result.reused) == (4, 0)
    return out


def copy_of(finished: Path, tmp_path: Path, missing: str | None = None) -> Path:
    """The finished study without its report, and without run ``missing`` (its record and its folder)."""
    out = tmp_path / "study"
    shutil.copytree(finished, out, ignore=shutil.ignore_patterns(*REPORT))
    if missing is not None:
        (out / "records" / f"{missing}.json").unlink()
        shutil.rmtree(out / "runs" / missing)
    return out


def assert_interrupted(p, out: Path) -> None:
    """Exit 130 and the one line that says how to go on; no traceback; no report written."""
    assert p.returncode == 130, (p.stdout + p.stderr)[-3000:]
    assert [line for line in p.stderr.splitlines() if line.startswith(INTERRUPTED)] == [f"{INTERRUPTED}{out}"]
    assert "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr, p.stderr[-3000:]
    assert not any((out / name).exists() for name in REPORT)


def epochs_in(run_dir: Path) -> list[int]:
    """The epoch column of a run's ``results.csv``, row by row."""
    return [int(r["epoch"]) for r in read_results_csv(run_dir / "results.csv")]


def checkpoint(run_dir: Path) -> tuple[int, bool] | None:
    """``last.pt``'s epoch index and whether it holds an optimizer (it can resume); None where there is none.

    ultralytics' final step strips the optimizer and sets the epoch to -1.
    """
    last = run_dir / "weights" / "last.pt"
    if not last.is_file():
        return None
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    return ckpt["epoch"], ckpt.get("optimizer") is not None


def csv_rows(out: Path) -> list[dict[str, str]]:
    """The study's ``study.csv``: one row per run."""
    with open(out / "study.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def json_records(out: Path) -> list[dict]:
    """The study's run records, in name order."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "records").glob("*.json"))]


# point, its N-th time, then: results.csv's epochs and last.pt as the interrupt left them, what the rerun did with
# the run, and results.csv's epochs at the end
CASES = [
    ("training-step", 1, [], None, "trained", [1, 2]),  # before the first checkpoint
    ("results-row", 1, [1], None, "trained", [1, 2]),  # epoch 1's row, no last.pt: trained afresh, the row gone
    ("results-row", 2, [1, 2], (0, True), "resumed", [1, 2, 2]),  # last.pt holds epoch 1: epoch 2 trained again
    ("checkpoint", 1, [1], (0, True), "resumed", [1, 2]),  # right after last.pt of epoch 1
    ("checkpoint", 2, [1, 2], (1, True), "revalidated", [1, 2]),  # right after the last epoch's last.pt
    ("validation", 2, [1], (0, True), "resumed", [1, 2]),  # during epoch 2's validation
    ("validation", 3, [1, 2], (-1, False), "revalidated", [1, 2]),  # during the final validation of best.pt
]


@pytest.mark.parametrize(("point", "n", "rows_left", "last_left", "status", "rows_end"), CASES,
                         ids=[f"{c[0]}@{c[1]}" for c in CASES])
def test_a_run_interrupted_at_a_named_point_is_resumed_or_retrained_and_reports_its_epochs_once(
        point, n, rows_left, last_left, status, rows_end, finished, shapes_data, tmp_path):
    out = copy_of(finished, tmp_path, missing=RUN)
    run_dir = out / "runs" / RUN
    cmd = command(shapes_data, out)

    p = run(cmd, tmp_path, **interrupt_at(point, n))
    assert_interrupted(p, out)
    assert not (out / "records" / f"{RUN}.json").exists()  # not recorded as finished
    assert epochs_in(run_dir) == rows_left
    assert checkpoint(run_dir) == last_left

    p = run(cmd, tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    trained = int(status == "trained")
    assert f"{trained} run{'s' * (trained != 1)} trained, {1 - trained} resumed, 3 reused" in p.stdout + p.stderr
    record = json.loads((out / "records" / f"{RUN}.json").read_text(encoding="utf-8"))
    assert record["status"] == status
    assert epochs_in(run_dir) == rows_end
    assert record["epochs_done"] == EPOCHS  # not the rows: an epoch trained again counts once
    runs = {Path(r["run_dir"]).name: r for r in csv_rows(out)}  # the report, written by this call
    assert len(runs) == 4 and {r["epochs"] for r in runs.values()} == {str(EPOCHS)}
    assert runs[RUN]["status"] == status

    rows = read_results_csv(run_dir / "results.csv")
    if _compat.TIME_COLUMN in rows[0]:  # ultralytics 8.4+: each epoch's time once, the resumed session's clock apart
        sessions = [rows[0], rows[-1]] if status == "resumed" else [rows[-1]]
        assert record["train_time_s"] == pytest.approx(sum(r[_compat.TIME_COLUMN] for r in sessions), rel=1e-6)
    assert (run_dir / SESSIONS_FILE).is_file() == (status == "resumed")


@pytest.mark.newest_only  # 8.3.0's ONNX exporter predates torch's dynamo exporter (see test_study.py)
def test_a_study_interrupted_during_the_latency_export_exports_again_and_trains_nothing(finished, shapes_data,
                                                                                      tmp_path):
    pytest.importorskip("onnxruntime")
    out = copy_of(finished, tmp_path)
    cmd = command(shapes_data, out, "--latency", "onnx")
    weights = [out / r["weights"] for r in json_records(out) if r["seed"] == 0]  # each row's first seed is exported
    assert [w.parts[-3] for w in weights] == ["yolov5n-seed0", "yolov5n-triplet-seed0"]  # in the table's row order
    before = {w: w.stat().st_mtime_ns for w in weights}

    p = run(cmd, tmp_path, **interrupt_at("export", 2))  # as the second row's export starts
    assert_interrupted(p, out)
    assert [w.with_suffix(".onnx").is_file() for w in weights] == [True, False]

    p = run(cmd, tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    assert "0 runs trained, 0 resumed, 4 reused" in p.stdout + p.stderr
    assert all(w.with_suffix(".onnx").is_file() for w in weights)
    assert {w: w.stat().st_mtime_ns for w in weights} == before  # the weights were exported, not trained again
    assert {r["latency_runtime"] for r in csv_rows(out)} == {"onnx"}
    assert {r["epochs"] for r in csv_rows(out)} == {str(EPOCHS)}
