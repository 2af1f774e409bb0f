"""The names ultralytics asks for when a checkpoint needs this package lead to this package (docs/sharing.md).

A checkpoint names its classes by import path (``ultralytics_triplet.nn``); where that module is missing, ultralytics'
loader runs ``check_requirements(<missing module name>)``, i.e. ``pip install ultralytics_triplet``. Package indexes
normalise ``_`` and ``-`` alike (PEP 503), so that name is this distribution's, ``ultralytics-triplet``.
"""

from __future__ import annotations

import importlib.metadata
import re

import pytest

pytestmark = pytest.mark.compat


def normalized(name: str) -> str:
    """A project name as package indexes compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_missing_module_name_is_this_distributions_name():
    import ultralytics_triplet.nn as nn

    module = nn.TripletAttention.__module__.split(".")[0]  # what a checkpoint's pickle asks to import first
    assert module == "ultralytics_triplet"
    installed = importlib.metadata.distribution(module).metadata["Name"]
    assert normalized(module) == normalized(installed) == "ultralytics-triplet"


def test_ultralytics_finds_this_installed_distribution_under_the_module_name(monkeypatch):
    """Where the package is installed, ultralytics' requirement check is satisfied by the module's name: no install."""
    from ultralytics.utils import checks

    monkeypatch.setattr(checks, "AUTOINSTALL", False)  # were it not satisfied, nothing is installed either
    assert checks.check_requirements("ultralytics_triplet") is True
