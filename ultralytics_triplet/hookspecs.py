"""Hook specifications: what a plugin may give ultralytics-triplet.

A plugin is any object or module with functions marked ``@hookimpl`` and named like the specs below. Publish it
under the ``ultralytics_triplet`` entry-point group and every process that imports ultralytics finds it::

    # pyproject.toml of your package
    [project.entry-points.ultralytics_triplet]
    my_attention = "my_package.plugin"
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from torch import nn

PROJECT = "ultralytics_triplet"  # pluggy project name and entry-point group

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_modules() -> list[type[nn.Module]]:
    """Return nn.Module classes that model YAMLs may name.

    The YAML name is the class name: ``[-1, 1, MyAttention, []]`` builds ``MyAttention()``. ultralytics passes the
    row's args as written and takes the output channel count to equal the input's, so a module must preserve
    channels. A name that ultralytics or an earlier plugin already uses is refused with a warning.
    """


@hookspec
def register_channel_modules() -> list[type[nn.Module]]:
    """Return nn.Module classes that model YAMLs may name and that take their input channel count first.

    Like :func:`register_modules`, and one thing more: the class is built as ``MyModule(c1, *args)``, where ``c1``
    is the channel count of the layer the row follows, as ``parse_model`` computes it for the model's scale (its
    ``c2`` of that layer: scaled by ``width_multiple`` and capped by ``max_channels``), and ``args`` are the row's
    args as written, never scaled. So ``[-1, 1, CBAM, []]`` builds ``CBAM(c1)`` at every scale, and
    ``[-1, 1, CBAM, [3]]`` builds ``CBAM(c1, 3)``. A YAML that spells the channel count itself (``[256]``) is right
    at one scale only; here it would be the second argument. The row's ``from`` must be ``-1`` (the layer before
    it, as ``insert_layers`` writes every row), and the module must keep the channel count. Where ultralytics'
    own parser already knows the name, its handling stays.
    """


@hookspec
def register_model_dirs() -> list[str | Path]:
    """Return directories of model YAMLs that ultralytics should find by bare name.

    ``YOLO("mynetn.yaml")`` then resolves to ``mynet.yaml`` at scale ``n`` in one of these directories (searched
    recursively), exactly as ``yolov8n.yaml`` resolves inside ultralytics, and so do its named placements
    (``mynetn-triplet.yaml``, ``-triplet-neck``, ``-triplet-dense``; see ``placements.py``).
    """
