"""``run_study`` and its steps (``ultralytics_triplet.study.steps``): the keywords become one options object.

The steps themselves train: tests/integration/test_study.py runs them end to end.
"""

from __future__ import annotations

import pytest

from ultralytics_triplet.study import steps
from ultralytics_triplet.study.options import StudyOptions

pytestmark = pytest.mark.compat


def test_run_study_hands_its_keywords_to_conduct_as_one_options_object(monkeypatch):
    seen = []
    monkeypatch.setattr(steps, "conduct", lambda options: seen.append(options) or "result")
    assert steps.run_study("data.yaml", model="yolov5n.yaml", placements=["after:4"], seeds=2, device="cpu",
                           latency="onnx", workers=0, lr0=0.02) == "result"
    assert steps.run_study("data.yaml") == "result"
    assert seen == [
        StudyOptions("data.yaml", model="yolov5n.yaml", placements=["after:4"], seeds=2, device="cpu", latency="onnx",
                     train_args={"workers": 0, "lr0": 0.02}),
        StudyOptions("data.yaml"),
    ]
