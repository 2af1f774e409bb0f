"""Environment variables this package reads, and the one rule for reading a boolean one. Imports ``os`` only.

``ULTRALYTICS_TRIPLET_DISABLE``       ``1``: patch nothing until ``ultralytics_triplet.register()`` (default off)
``ULTRALYTICS_TRIPLET_PASS_THROUGH``  ``0``: inserted layers keep the paper's initialisation (default on)
``ULTRALYTICS_TRIPLET_PLUGINS``       ``a,b``: load only these third-party plugins (default: all)
``ULTRALYTICS_TRIPLET_FORMULATION``   ``plain``: every TripletAttention runs its plain formulation (default ``auto``)
"""

from __future__ import annotations

import os

DISABLE = "ULTRALYTICS_TRIPLET_DISABLE"
PASS_THROUGH = "ULTRALYTICS_TRIPLET_PASS_THROUGH"
PLUGINS = "ULTRALYTICS_TRIPLET_PLUGINS"
FORMULATION = "ULTRALYTICS_TRIPLET_FORMULATION"
PREFIX = "ULTRALYTICS_TRIPLET"  # every variable above starts with it (the study passes them on to Ray workers)

_FALSE = ("0", "false", "no", "off")


def flag(name: str, default: bool) -> bool:
    """Read a boolean variable: unset or empty gives ``default``; ``0``/``false``/``no``/``off`` (any case) are False.

    Examples:
        >>> flag("ULTRALYTICS_TRIPLET_DISABLE", default=False)
        False
    """
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in _FALSE


def disabled() -> bool:
    """Whether the user opted out of patching with ``ULTRALYTICS_TRIPLET_DISABLE``."""
    return flag(DISABLE, default=False)
