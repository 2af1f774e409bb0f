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
def register_model_dirs() -> list[str | Path]:
    """Return directories of model YAMLs that ultralytics should find by bare name.

    ``YOLO("mynetn.yaml")`` then resolves to ``mynet.yaml`` at scale ``n`` in one of these directories (searched
    recursively), exactly as ``yolov8n.yaml`` resolves inside ultralytics, and so do its named placements
    (``mynetn-triplet.yaml``, ``-triplet-neck``, ``-triplet-dense``; see ``placements.py``).
    """
