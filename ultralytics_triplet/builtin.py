"""This package's own plugin: TripletAttention and the bundled model configs.

It is published under the ``ultralytics_triplet`` entry-point group like any third-party plugin would be.
"""

from __future__ import annotations

from pathlib import Path

from .hookspecs import hookimpl


def config_dir() -> Path:
    """Return the directory of bundled model YAMLs (inside the installed package, or ``cfg/`` in a checkout)."""
    here = Path(__file__).resolve().parent
    installed = here / "cfg"
    return installed if installed.is_dir() else here.parent / "cfg"


@hookimpl
def register_modules():
    """Give ultralytics TripletAttention."""
    from .nn import TripletAttention

    return [TripletAttention]


@hookimpl
def register_model_dirs():
    """Give ultralytics the bundled YOLOv5/v8/11/26 triplet configs."""
    return [config_dir()]
