"""This package's own plugin: TripletAttention, and the bundled configs in ``cfg/``.

It is published under the ``ultralytics_triplet`` entry-point group like any third-party plugin, and its configs take
the route a third-party plugin's do: a model directory (``register_model_dirs``). ``cfg/`` holds the tutorial's own
file, ``yolov5_TripletAttention.yaml`` (and its YOLOv5-repository-format copy). The named placements,
``NAME-triplet[-neck|-dense].yaml``, need no directory: they are generated from ``NAME.yaml`` on first use
(``placements.py``), for ultralytics' configs and for those of any plugin's model directory alike.
"""

from __future__ import annotations

from pathlib import Path

from .hookspecs import hookimpl

# In the wheel cfg/ is inside the package (pyproject.toml's force-include); in a source checkout it is beside it.
CFG_DIR = next((d for d in (Path(__file__).parent / "cfg", Path(__file__).parent.parent / "cfg") if d.is_dir()),
               Path(__file__).parent / "cfg")


@hookimpl
def register_modules():
    """Give ultralytics TripletAttention."""
    from .nn import TripletAttention

    return [TripletAttention]


@hookimpl
def register_model_dirs():
    """Give ultralytics the bundled configs, found by bare name (``yolov5s_TripletAttention.yaml``)."""
    return [CFG_DIR]
