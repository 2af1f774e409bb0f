"""The words a study's arguments take: placement forms, modules, references, latency runtimes (and their extras).

Light on purpose (no torch, no ultralytics): the command line reads these for its help text, and a runtime's
packages are checked before anything trains.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from .._checks import fail
from ..placements import NAMES

__all__ = ("AFTER", "EACH_BACKBONE", "FORMS", "MODULE", "RUNTIME", "RUNTIMES", "SCALE_UP", "Runtime", "check_runtime")

AFTER = "after:"  # after:4 or after:4,6,8
EACH_BACKBONE = "each-backbone"
FORMS = (*NAMES, f"{AFTER}I[,J...]", EACH_BACKBONE)  # how the errors and the help list the placement forms
MODULE = "TripletAttention"  # the module every placement inserts unless `modules` says otherwise
SCALE_UP = "scale-up"  # the reference that is the model at its next scale letter: yolov5n.yaml -> yolov5s.yaml


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
