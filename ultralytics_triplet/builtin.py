"""This package's own plugin: TripletAttention, ultralytics' own CBAM, and the bundled configs in ``cfg/``.

ultralytics ships ``CBAM(c1, kernel_size=7)`` in ``ultralytics.nn.modules`` but its parser cannot name it (it is not
imported into ``ultralytics.nn.tasks``, and its constructor needs the input channel count). Registered as a channel
module, ``[-1, 1, CBAM, []]`` builds ultralytics' class, not a copy, with the channel count of the layer before it, at
every scale. It is ultralytics' simplified CBAM: its channel attention is one 1x1 convolution on the average-pooled
map (no max pool, no MLP reduction), followed by CBAM's spatial attention.

It is published under the ``ultralytics_triplet`` entry-point group like any third-party plugin, and its configs take
the route a third-party plugin's do: a model directory (``register_model_dirs``). ``cfg/`` holds the tutorial's own
file, ``yolov5_TripletAttention.yaml`` (and its YOLOv5-repository-format copy). The named placements,
``NAME-triplet[-neck|-dense].yaml``, need no directory: they are generated from ``NAME.yaml`` on first use
(``placements.py``), for ultralytics' configs and for those of any plugin's model directory alike.
"""

from __future__ import annotations

from pathlib import Path

from ultralytics.nn.modules import CBAM

from .hookspecs import hookimpl
from .nn import TripletAttention

# In the wheel cfg/ is inside the package (pyproject.toml's force-include); in a source checkout it is beside it.
CFG_DIR = next((d for d in (Path(__file__).parent / "cfg", Path(__file__).parent.parent / "cfg") if d.is_dir()),
               Path(__file__).parent / "cfg")


@hookimpl
def register_modules():
    """Give ultralytics TripletAttention."""
    return [TripletAttention]


@hookimpl
def register_channel_modules():
    """Give ultralytics' parser its own CBAM, built with the input channel count of the layer before it."""
    return [CBAM]


@hookimpl
def register_model_dirs():
    """Give ultralytics the bundled configs, found by bare name (``yolov5s_TripletAttention.yaml``)."""
    return [CFG_DIR]
