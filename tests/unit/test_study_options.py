"""A study's options (``ultralytics_triplet.study.options``): one object with the defaults ``run_study`` documents."""

from __future__ import annotations

import dataclasses
import inspect
import sys

import pytest

from ultralytics_triplet.study.options import RUNTIME, StudyOptions, check_runtime
from ultralytics_triplet.study.steps import run_study

pytestmark = pytest.mark.compat


def test_the_options_default_to_what_run_study_documents():
    keywords = inspect.signature(run_study).parameters
    fields = [f for f in dataclasses.fields(StudyOptions) if f.name != "train_args"]
    assert [f.name for f in fields] == [name for name, p in keywords.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    for f in fields[1:]:  # all but data, which has none
        assert f.default == keywords[f.name].default, f.name
    assert keywords["train_args"].kind is inspect.Parameter.VAR_KEYWORD
    assert StudyOptions("data.yaml").train_args == {}


def test_the_options_are_one_value_that_is_not_changed_in_place():
    options = StudyOptions("data.yaml", seeds=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seeds = 2
    assert dataclasses.replace(options, seeds=2).seeds == 2 and options.seeds == 5


def test_a_latency_runtime_is_checked_with_its_packages(monkeypatch):
    assert check_runtime("torch") is RUNTIME["torch"]
    with pytest.raises(ValueError, match="latency must be one of torch, onnx, openvino, got 'tensorrt'") as e:
        check_runtime("tensorrt")
    assert e.value.param == "latency"
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an import meets where the extra is not installed
    with pytest.raises(ImportError, match=r"pip install 'ultralytics-triplet\[openvino\]'"):
        check_runtime("openvino")
