"""What each row of a study costs (``ultralytics_triplet.study.costs``): a failed export for the latency column."""

from __future__ import annotations

import pytest

from ultralytics_triplet.study import costs
from ultralytics_triplet.study.options import RUNTIME

pytestmark = pytest.mark.compat


def test_an_export_that_fails_is_one_line_naming_the_row_and_the_recorded_runs(tmp_path, monkeypatch):
    class Failing:  # what ultralytics' exporter does where a tool is missing: it raises the tool's error
        def __init__(self, weights):
            pass

        def export(self, **kwargs):
            raise ModuleNotFoundError("No module named 'onnxscript'")

    monkeypatch.setattr(costs, "YOLO", Failing)
    with pytest.raises(RuntimeError) as e:
        costs._export(tmp_path / "best.pt", RUNTIME["onnx"], 64, "yolov5n-CBAM.yaml")
    assert str(e.value).startswith("latency 'onnx': ultralytics ") and "\n" not in str(e.value)
    assert "could not export yolov5n-CBAM.yaml (ModuleNotFoundError: No module named 'onnxscript')" in str(e.value)
    assert str(e.value).endswith("every run is recorded: the same call with another latency reports them")
    assert e.value.remedy is costs.ANOTHER_LATENCY  # what the command line says in its own words
    assert str(e.value) == f"{e.value.detail}; {costs.ANOTHER_LATENCY.python}" and e.value.param is None
