"""A study's options: :class:`StudyOptions`, the one object that carries them, and the words they take (placement
forms, modules, references, latency runtimes and their extras).

Light on purpose (no torch, no ultralytics): the command line reads these for its help text and builds the options
from its flags, and a runtime's packages are checked before anything trains.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._checks import fail
from ..placements import NAMES

__all__ = ("AFTER", "DETECT", "EACH_BACKBONE", "FORMS", "MODULE", "RUNTIME", "RUNTIMES", "SCALE_UP", "Runtime",
           "StudyOptions", "check_detect", "check_runtime")

AFTER = "after:"  # after:4 or after:4,6,8
EACH_BACKBONE = "each-backbone"
FORMS = (*NAMES, f"{AFTER}I[,J...]", EACH_BACKBONE)  # how the errors and the help list the placement forms
MODULE = "TripletAttention"  # the module every placement inserts unless `modules` says otherwise
SCALE_UP = "scale-up"  # the reference that is the model at its next scale letter: yolov5n.yaml -> yolov5s.yaml
DETECT = 0.01  # the difference of the verdict's metric a study says the seeds needed for (mAP50-95 0.01: one point)


@dataclass(frozen=True)
class Runtime:
    """Where the latency column is measured.

    Attributes:
        name (str): As ``latency`` (``--latency``) names it.
        label (str): As the table names it (``ONNX Runtime``).
        export (str | None): The ``format`` of ultralytics' ``model.export`` that makes its file (None: the
            PyTorch model itself).
        packages (tuple[str, ...]): What it and ultralytics' exporter import.
        extra (str | None): The optional extra of this package that installs them.
    """

    name: str
    label: str
    export: str | None
    packages: tuple[str, ...]
    extra: str | None


RUNTIME = {
    "torch": Runtime("torch", "PyTorch", None, (), None),
    "onnx": Runtime("onnx", "ONNX Runtime", "onnx", ("onnx", "onnxruntime", "onnxslim"), "onnx"),
    "openvino": Runtime("openvino", "OpenVINO", "openvino", ("openvino",), "openvino"),
}
RUNTIMES = tuple(RUNTIME)  # torch (the default) needs no extra


def _installed(package: str) -> bool:
    """Whether ``package`` can be imported (without importing it)."""
    if package in sys.modules:
        return sys.modules[package] is not None
    return importlib.util.find_spec(package) is not None


def check_runtime(latency: str) -> Runtime:
    """Return the runtime ``latency`` names if its packages are installed.

    Raises:
        ValueError: If it names no runtime.
        ImportError: If a package it needs is missing: one line naming the extra to install.
    """
    if latency not in RUNTIME:
        raise fail(ValueError, "latency", f"must be one of {', '.join(RUNTIMES)}, got {latency!r}")
    runtime = RUNTIME[latency]
    missing = [p for p in runtime.packages if not _installed(p)]
    if missing:
        raise fail(ImportError, "latency", f"'{latency}' needs {', '.join(missing)}, not installed: "
                   f"pip install 'ultralytics-triplet[{runtime.extra}]'")
    return runtime


def check_detect(detect: Any) -> float:
    """Return ``detect`` as a float if it is a difference a metric between 0 and 1 can show: above 0, at most 1.

    Raises:
        ValueError: Otherwise, naming ``detect``.
    """
    if isinstance(detect, bool) or not isinstance(detect, (int, float)) or not 0 < detect <= 1:
        raise fail(ValueError, "detect", f"must be a difference of the verdict's metric above 0 and at most 1, "
                   f"got {detect!r}")
    return float(detect)


@dataclass(frozen=True)
class StudyOptions:
    """Everything a study is asked to do: ``run_study``'s arguments (see there), or the ``study`` command's flags.

    One object carries them from the caller through the plan to every step, each read by its name: a new option is a
    field here, a keyword of ``run_study`` and a flag of the command line. The plan holds them checked
    (``Plan.options``); what of them defines the study is its ``Settings``.

    Attributes:
        data (str | Path): Dataset YAML.
        model (str | Path): The plain model.
        placements (tuple[str, ...]): Named placements, ``after:I[,J...]`` or ``each-backbone``.
        seeds (int): Every row trains once per seed ``0..seeds-1``.
        epochs, imgsz, batch (int): The budget of every run.
        pretrained (str | Path | None): Base weights every row starts from, or None for scratch.
        device (str | int | None): ultralytics' ``device``.
        out (str | Path): The study directory.
        backend (str): ``local`` or ``ray``.
        address (str | None): Ray cluster address.
        latency_runs (int): Interleaved rounds of the latency measurement.
        verbose (bool): Stream every run's full ultralytics log.
        modules (tuple[str, ...]): The modules each placement is built with.
        references (tuple[str, ...]): Plain models trained alike and compared with ``model``.
        latency (str): The runtime of the latency column (``torch``, ``onnx``, ``openvino``).
        detect (float): The difference of the verdict's metric a verdict of no difference says the seeds needed for.
        train_args (dict[str, Any]): Further ultralytics train arguments for every run.
    """

    data: str | Path
    model: str | Path = "yolo11n.yaml"
    placements: tuple[str, ...] = NAMES
    seeds: int = 3
    epochs: int = 50
    imgsz: int = 640
    batch: int = 16
    pretrained: str | Path | None = None
    device: str | int | None = None
    out: str | Path = "study"
    backend: str = "local"
    address: str | None = None
    latency_runs: int = 20
    verbose: bool = False
    modules: tuple[str, ...] = (MODULE,)
    references: tuple[str, ...] = ()
    latency: str = "torch"
    detect: float = DETECT
    train_args: dict[str, Any] = field(default_factory=dict)
