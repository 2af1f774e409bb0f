"""``ultralytics-triplet study`` end to end: its help, and tiny studies that train.

The training tests train yolov5n, its bundled placements (``triplet``, ``triplet-neck``) and explicit positions
(``after:4``) for 1-3 epochs on 16 synthetic 64 px images: the numbers mean nothing, the tests check what the study
does with them (and which data order each seed trains on).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import IMGSZ, assert_usage_error, clean_env, cli, interrupt_at, run

from ultralytics_triplet import run_study as study
from ultralytics_triplet.cli import main
from ultralytics_triplet.data import make_shapes_dataset
from ultralytics_triplet.study.decision import verdict
from ultralytics_triplet.study.report import verdict_words, worth_words
from ultralytics_triplet.study.run import RunSpec, read_results_csv, run_training
from ultralytics_triplet.study.stats import paired_interval

pytestmark = pytest.mark.compat  # but for the Ray test, marked newest_only


TINY = dict(model="yolov5n.yaml", seeds=2, epochs=1, imgsz=IMGSZ, batch=8, device="cpu", workers=0, latency_runs=2)


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``directory``: equal snapshots mean nothing was written."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def table_row(text: str, config: str) -> str:
    """The line of a study table that starts with ``config``."""
    lines = [line for line in text.splitlines() if line.split(" ")[0] == config]
    assert len(lines) == 1, text
    return lines[0]


def test_help(tmp_path):
    p = run([*cli(), "study", "--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: ultralytics-triplet study")
    for option in ("--data", "--placements", "--seeds", "--pretrained", "--device", "--backend", "--address",
                   "--verbose", "after:I[,J...]", "each-backbone"):
        assert option in p.stdout
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_local_study_writes_table_csv_and_chart_and_a_second_call_trains_nothing(tmp_path, capsys):
    data = make_shapes_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=IMGSZ)
    out = tmp_path / "study"
    result = study(data, placements=["triplet", "triplet-neck"], out=out, **TINY)
    configs = ["yolov5n.yaml", "yolov5n-triplet.yaml", "yolov5n-triplet-neck.yaml"]
    assert (result.trained, result.resumed, result.reused) == (6, 0, 0)

    # study.txt: the returned table, one row per variant named by its config, the verdict column
    text = (out / "study.txt").read_text(encoding="utf-8")
    assert text == result.table + "\n"
    assert [r.config for r in result.rows] == configs
    assert " baseline " in table_row(text, configs[0])
    for r in result.rows[1:]:
        line = table_row(text, r.config)
        assert verdict_words(r.verdict) in line and line.endswith(worth_words(r.worth))
        assert r.verdict == verdict(r.verdict_metric.difference, "mAP50-95", r.p_holm, comparisons=2)  # Holm
        assert r.cost.parameters - result.rows[0].cost.parameters == 300 * (1 if r.config.endswith("-triplet.yaml")
                                                                            else 3)

    # study.csv: one row per run, and the table's figures follow from it
    runs = read_csv(out / "study.csv")
    assert sorted((r["config"], r["seed"]) for r in runs) == sorted((c, s) for c in configs for s in ("0", "1"))
    for r in runs:
        assert r["epochs"] == "1" and r["status"] == "trained" and r["data_order"] == "seed"
        assert 0.0 <= float(r["mAP50-95"]) <= float(r["mAP50"]) <= 1.0
        assert (out / r["weights"]).is_file() and (out / r["run_dir"] / "results.csv").is_file()
        assert "Starting training for 1 epochs" in (out / r["run_dir"] / "train.log").read_text(encoding="utf-8")
    value = {(r["config"], int(r["seed"])): float(r["mAP50-95"]) for r in runs}
    for row in result.rows:
        mine = [value[row.config, s] for s in (0, 1)]
        assert f"{sum(mine) / 2:.4f} ± " in table_row(text, row.config)
        if row.verdict_metric.difference is not None:
            d = paired_interval([value[configs[0], s] for s in (0, 1)], mine)
            assert f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]" in table_row(text, row.config)

    # study.png: a real picture
    import matplotlib.image

    png = matplotlib.image.imread(out / "study.png")
    assert png.shape[0] > 200 and png.shape[1] > 400 and png.std() > 0

    # the same call again: everything reused, no weights touched
    before = snapshot(out / "runs")
    again = study(data, placements=["triplet", "triplet-neck"], out=out, **TINY)
    assert (again.trained, again.resumed, again.reused) == (0, 0, 6)
    assert snapshot(out / "runs") == before
    assert [r.verdict_metric for r in again.rows] == [r.verdict_metric for r in result.rows]

    # other settings or other data: a different study, refused without touching anything
    everything = snapshot(out)
    base = ["study", "--data", str(data), "--model", "yolov5n.yaml", "--placements", "triplet", "--seeds", "2",
            "--epochs", "1", "--imgsz", str(IMGSZ), "--batch", "8", "--device", "cpu", "--out", str(out)]
    capsys.readouterr()
    assert_usage_error(main([*base[:-6], "--batch", "4", *base[-4:]]), capsys.readouterr().err,
                       "holds a different study", "batch")
    (data.parent / "images" / "train" / "00000.png").write_bytes(b"changed")
    assert_usage_error(main(base), capsys.readouterr().err, "holds a different study", "data")
    assert snapshot(out) == everything


@pytest.mark.slow
def test_a_study_of_explicit_positions_runs_end_to_end_and_its_console_is_one_progress_bar(shapes_data, tmp_path):
    out = tmp_path / "study"
    cmd = [*cli(), "study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "after:4",
           "after:6", "--seeds", "2", "--epochs", "2", "--imgsz", str(IMGSZ), "--batch", "8", "--device", "cpu",
           "--workers", "0", "--latency-runs", "2", "--out", str(out)]
    p = subprocess.run(cmd, cwd=tmp_path, env=clean_env(), capture_output=True, timeout=600)  # bytes: keep the \r
    console = (p.stdout + p.stderr).decode("utf-8", errors="replace")
    assert p.returncode == 0, console[-3000:]
    configs = ["yolov5n.yaml", "yolov5n+TA@4.yaml", "yolov5n+TA@6.yaml"]

    # named by what they are: in the table, the CSV, the run folders; their configs written into the study folder
    text = (out / "study.txt").read_text(encoding="utf-8")
    assert [table_row(text, c).split(" ")[0] for c in configs] == configs
    runs = read_csv(out / "study.csv")
    assert sorted((r["config"], r["placement"], r["seed"]) for r in runs) == sorted(
        (c, p, s) for c, p in zip(configs, ("none", "after:4", "after:6")) for s in ("0", "1"))
    assert sorted(f.name for f in (out / "models").iterdir()) == configs[1:]
    for r in runs:
        assert r["run_dir"] == f"runs/{Path(r['config']).stem}-seed{r['seed']}" and r["data_order"] == "seed"
        log = (out / r["run_dir"] / "train.log").read_text(encoding="utf-8")  # each run's log in its folder
        assert "Starting training for 2 epochs" in log and "box_loss" in log
    params = {r.config: r.cost.parameters for r in study(shapes_data, placements=["after:4", "after:6"], out=out,
                                                          **{**TINY, "epochs": 2}).rows}  # all reused
    assert params["yolov5n+TA@4.yaml"] - params["yolov5n.yaml"] == 300 == params["yolov5n+TA@6.yaml"] - params[
        "yolov5n.yaml"]

    # the console: one progress bar over the runs, not ultralytics' epochs of every run
    assert "Starting training" not in console and "box_loss" not in console
    assert "study yolov5n-seed0 (run 1/6) epoch 1/2" in console
    visible = [line.split("\r")[-1] for line in console.split("\n")]  # what a terminal keeps of each line
    bar = [line for line in visible if "(run " in line or "runs done" in line]
    assert len(bar) == 1 and "study 6/6 runs done" in bar[0], console[-3000:]  # the bar redraws in place
    assert "ultralytics-triplet: 6 runs trained, 0 resumed, 0 reused" in console
    assert (out / "study.png").stat().st_size > 10_000

    again = run(cmd, tmp_path)  # resumable: the same command reuses every run
    assert again.returncode == 0 and "0 runs trained, 0 resumed, 6 reused" in again.stdout + again.stderr


EXPORTS_OF_TODAY = pytest.mark.newest_only  # 8.3.0's exporters predate torch's dynamo ONNX exporter (onnxscript) and
# OpenVINO's removal of openvino.runtime; a failed export is tested in this process with any release


@EXPORTS_OF_TODAY
@pytest.mark.slow
def test_a_study_weighs_modules_and_the_next_scale_at_onnx_latency_end_to_end(shapes_data, tmp_path):
    """The whole decision through the command line: a placement with two modules, the scale-up reference, ONNX."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "study"
    cmd = [*cli(), "study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
           "--modules", "TripletAttention", "CBAM", "--references", "scale-up", "--seeds", "2", "--epochs", "1",
           "--imgsz", str(IMGSZ), "--batch", "8", "--device", "cpu", "--workers", "0", "--latency", "onnx",
           "--latency-runs", "3", "--out", str(out)]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    configs = ["yolov5n.yaml", "yolov5s.yaml", "yolov5n-triplet.yaml", "yolov5n-CBAM.yaml"]

    text = (out / "study.txt").read_text(encoding="utf-8")
    rows = [table_row(text, c) for c in configs]
    assert [line.split(" ")[0] for line in text.splitlines() if line.split(" ")[0] in configs] == configs
    assert " baseline " in rows[0] and "ONNX ms" in text.splitlines()[1] and "p (Holm)" in text.splitlines()[1]
    assert "Holm-adjusted p-values (p (Holm)) of the paired t-tests on ΔmAP50-95 over the 3 comparisons" in text
    assert "References (yolov5s.yaml) are plain models trained alike" in text
    assert "ONNX ms: batch-1 latency at imgsz 64" in text and "ONNX Runtime " in text
    assert "model.export(format='onnx', imgsz=64, batch=1)" in text

    runs = read_csv(out / "study.csv")
    by_config = {c: [r for r in runs if r["config"] == c] for c in configs}
    assert [{(r["role"], r["module"], r["placement"]) for r in by_config[c]} for c in configs] == [
        {("plain", "none", "none")}, {("reference", "none", "none")}, {("variant", "TripletAttention", "triplet")},
        {("variant", "CBAM", "triplet")}]
    for r in runs:
        assert r["latency_runtime"] == "onnx" and float(r["latency_ms"]) > 0
        assert r["standing"] in ("choice", "on_front", "not_worth_it") and float(r["latency_ratio_lo"]) > 0
        assert (r["versus"] in configs) == (r["standing"] == "not_worth_it")
        assert table_row(text, r["config"]).endswith(r["worth_it"])  # the table's words, typed in the CSV
        assert (r["p_holm"] == "nan") == (r["role"] == "plain")
        if r["seed"] == "0":  # each row's first seed is exported and timed, beside its weights
            assert (out / Path(r["weights"]).with_suffix(".onnx")).is_file()
    assert {r["standing"] for r in runs} & {"choice", "on_front"}  # the front is never empty
    assert "ONNX" in (out / "export.log").read_text(encoding="utf-8")
    cbam = (out / "models" / "yolov5n-CBAM.yaml").read_text(encoding="utf-8")
    assert "[-1, 1, CBAM, []]  # inserted by ultralytics-triplet" in cbam

    import matplotlib.image

    png = matplotlib.image.imread(out / "study.png")
    assert png.shape[0] > 800 and png.std() > 0  # the paired differences above, accuracy against latency below

    again = run(cmd, tmp_path)  # the reference and the CBAM row are recorded like any row: nothing trains again
    assert again.returncode == 0 and "0 runs trained, 0 resumed, 8 reused" in again.stdout + again.stderr


@EXPORTS_OF_TODAY
@pytest.mark.slow
def test_openvino_latency_is_measured_on_each_rows_openvino_export(shapes_data, tmp_path):
    pytest.importorskip("openvino")
    out = tmp_path / "study"
    result = study(shapes_data, placements=["triplet"], out=out, latency="openvino", **TINY)
    assert "OpenVINO ms" in result.table.splitlines()[1] and "PERFORMANCE_HINT LATENCY" in result.table
    assert {r.cost.runtime for r in result.rows} == {"openvino"} and all(r.cost.latency_ms > 0 for r in result.rows)
    assert result.rows[0].cost.latency_ratio == 1.0
    for r in result.rows:
        weights = out / r.weights
        assert (weights.parent / f"{weights.stem}_openvino_model").is_dir()


def recording_trainer(order: list[str]):
    """ultralytics' detection trainer, noting the image of every training sample in the order it trains on them."""
    from ultralytics.models.yolo.detect import DetectionTrainer

    class Recording(DetectionTrainer):
        def preprocess_batch(self, batch):
            order.extend(Path(f).name for f in batch["im_file"])
            return super().preprocess_batch(batch)

    return Recording


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])  # ultralytics 8.3 starts dataloader workers as it builds the loader
def test_each_seed_trains_on_its_own_data_order_and_the_same_seed_on_the_same(workers, shapes_data, tmp_path):
    """On every supported release, 8.3 included (whose loader ignores the seed): the study's own training run."""
    orders, records = [], []
    for k, seed in enumerate((0, 1, 0)):
        order: list[str] = []
        spec = RunSpec(cfg="yolov5n.yaml", data=str(shapes_data), seed=seed, epochs=2, imgsz=IMGSZ, batch=4,
                       device="cpu", project=str(tmp_path / "runs"), name=f"run{k}-seed{seed}",
                       train_args={"workers": workers, "trainer": recording_trainer(order)})
        records.append(run_training(spec))
        orders.append(order)
    assert len(orders[0]) == 2 * 16 and sorted(orders[0][:16]) == sorted(orders[0][16:])  # 2 epochs of 16 images
    assert orders[0] != orders[1]  # two seeds: two data orders
    assert orders[0][:16] != orders[1][:16]  # from the first epoch on
    assert orders[0] == orders[2]  # the same seed: the same order
    assert {r.data_order for r in records} == {"seed"}


@pytest.mark.slow
def test_an_interrupted_study_resumes_the_interrupted_run_and_trains_the_rest(shapes_data, tmp_path):
    out = tmp_path / "study"
    cmd = [*cli(), "study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
           "--seeds", "2", "--epochs", "3", "--imgsz", str(IMGSZ), "--batch", "8", "--device", "cpu",
           "--workers", "0", "--latency-runs", "2", "--out", str(out)]
    # Ctrl-C between epoch 2's row in results.csv and its last.pt, in the first run (every interrupt point of a run:
    # test_study_interrupts.py)
    p = run(cmd, tmp_path, **interrupt_at("results-row", 2))
    assert p.returncode == 130, p.stderr[-3000:]
    assert "interrupted; run the same command again" in p.stderr
    run_dir = out / "runs" / "yolov5n-seed0"
    ckpt = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and ckpt["optimizer"] is not None  # epoch 1 of 3: resumable
    assert not list((out / "records").glob("*.json"))  # nothing recorded as finished

    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "3 runs trained, 1 resumed, 0 reused" in p.stdout + p.stderr
    records = {r["run"]: r for r in map(json.loads, map(Path.read_text, (out / "records").glob("*.json")))}
    assert sorted(records) == ["yolov5n-seed0", "yolov5n-seed1", "yolov5n-triplet-seed0", "yolov5n-triplet-seed1"]
    assert records.pop("yolov5n-seed0")["status"] == "resumed"
    assert {r["status"] for r in records.values()} == {"trained"}
    assert [r["epoch"] for r in read_results_csv(run_dir / "results.csv")] == [1, 2, 2, 3]  # epoch 2 trained again
    rows = read_csv(out / "study.csv")
    assert {r["epochs"] for r in rows} == {"3"}  # every run reports its three epochs, the resumed one too
    assert (out / "study.txt").is_file() and (out / "study.png").is_file()


@pytest.mark.newest_only
@pytest.mark.slow
def test_ray_backend_trains_each_run_in_a_worker_process(tmp_path):
    pytest.importorskip("ray")
    import ultralytics_triplet

    data = make_shapes_dataset(tmp_path / "data", n_train=16, n_val=8, imgsz=IMGSZ)
    out = tmp_path / "study"
    result = study(data, placements=["triplet"], out=out, backend="ray", **TINY)
    assert (result.trained, result.reused) == (4, 0)
    records = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
    assert len(records) == 4
    for r in records:
        assert r["pid"] != os.getpid()  # a Ray worker trained it...
        assert Path(r["package"]) == Path(ultralytics_triplet.__file__).parent  # ...with this very package
        assert "Starting training for 1 epochs" in (out / r["run_dir"] / "train.log").read_text(encoding="utf-8")
    assert len(read_csv(out / "study.csv")) == 4 and (out / "study.png").is_file()
    assert "yolov5n-triplet.yaml" in (out / "study.txt").read_text(encoding="utf-8")
    local = study(data, placements=["triplet"], out=out, backend="local", **TINY)  # the backend is not a setting
    assert (local.trained, local.reused) == (0, 4)
