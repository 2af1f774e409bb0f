"""compare_models (``ultralytics_triplet.compare``): the same measurements for both models, latency timed interleaved
with explicit threads."""

from __future__ import annotations

import cv2
import pytest
import torch
from torch import nn

from ultralytics_triplet.compare import compare_models, format_table, plot_comparison
from ultralytics_triplet.loading import load_model

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def rows():
    return compare_models("yolov5n.yaml", "yolov5n-triplet.yaml", imgsz=64, runs=3, progress=False)


def test_counts_differ_by_one_triplet_row(rows):
    a, b = rows
    assert [a["name"], b["name"]] == ["yolov5n.yaml", "yolov5n-triplet.yaml"]
    assert b["parameters"] - a["parameters"] == 300
    assert b["rows"] - a["rows"] == 1
    assert b["layers"] > a["layers"]
    assert 0 < a["gflops"] <= b["gflops"]


def test_latency_fields(rows):
    for r in rows:
        assert 0 < r["latency_min_ms"] <= r["latency_ms"] <= r["latency_max_ms"]
        assert (r["runs"], r["threads"], r["imgsz"]) == (3, 1, 64)


def test_table_shows_both_models_and_the_difference(rows):
    table = format_table(rows)
    assert "yolov5n.yaml" in table and "yolov5n-triplet.yaml" in table
    params = next(line for line in table.splitlines() if line.startswith("parameters"))
    plain, triplet, diff = params.split()[1:4]
    assert int(triplet.replace(",", "")) - int(plain.replace(",", "")) == 300 and diff == "+300"


def test_chart_is_a_png(rows, tmp_path):
    out = plot_comparison(rows, tmp_path / "sub" / "chart.png")
    image = cv2.imread(str(out))
    assert image is not None and image.shape[1] > image.shape[0] > 100


CALLS: list[str] = []  # module-level: compare_models times deep copies of the models


class Recorder(nn.Module):
    """A tiny model that logs each forward call."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        CALLS.append(self.name)
        return self.conv(x)


def test_runs_are_interleaved_and_threads_are_set_then_restored(monkeypatch):
    CALLS.clear()
    seen_threads = []
    original = torch.nn.Conv2d.forward

    def spy(self, x):
        seen_threads.append(torch.get_num_threads())
        return original(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", spy)
    before = torch.get_num_threads()
    want = 2 if before == 1 else 1  # differs from the current setting, so the test sees it being set
    rows = compare_models(Recorder("a"), Recorder("b"), imgsz=32, runs=4, threads=want, warmup=1, progress=False)
    assert CALLS[-10:] == ["a", "b"] * 5  # warm-up and timed passes alternate A, B
    assert set(seen_threads[-8:]) == {want}
    assert torch.get_num_threads() == before
    assert [r["name"] for r in rows] == ["A: Recorder", "B: Recorder"]  # same names are told apart


def test_accepts_checkpoints_and_yolo_wrappers(tmp_path):
    from ultralytics import YOLO

    wrapper = YOLO("yolov5n-triplet.yaml")
    path = tmp_path / "m.pt"
    torch.save({"model": wrapper.model, "train_args": {"task": "detect"}}, path)
    a, b = compare_models(wrapper, path, imgsz=64, runs=1, progress=False)
    assert a["parameters"] == b["parameters"]
    assert isinstance(load_model(wrapper), nn.Module) and not load_model(path).training


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"runs": 0}, ValueError),
        ({"imgsz": 100}, ValueError),
        ({"threads": 0}, ValueError),
        ({"b": "missing.pt"}, FileNotFoundError),
        ({"b": "dir/missing.yaml"}, FileNotFoundError),
        ({"b": "no-such-model.yaml"}, FileNotFoundError),
        ({"b": "model.onnx"}, ValueError),
    ],
)
def test_bad_arguments(kwargs, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {"a": "yolov5n.yaml", "b": "yolov5n.yaml", "imgsz": 64, "runs": 1, **kwargs}
    with pytest.raises(error):
        compare_models(**args, progress=False)
