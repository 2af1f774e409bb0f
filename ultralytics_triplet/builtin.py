"""This package's own plugin: TripletAttention.

It is published under the ``ultralytics_triplet`` entry-point group like any third-party plugin would be. Its model
configs need no directory: every ``NAME-triplet[-neck|-dense].yaml`` is generated from ``NAME.yaml`` on first use
(``placements.py``), for ultralytics' configs and for those of any plugin's model directory alike.
"""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def register_modules():
    """Give ultralytics TripletAttention."""
    from .nn import TripletAttention

    return [TripletAttention]
