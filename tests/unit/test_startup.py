"""The interpreter-start hook (``ultralytics_triplet._startup``) as the wheel installs it; what it does in fresh
interpreters is in integration/test_startup.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import SITE

pytestmark = pytest.mark.compat


def test_wheel_installs_the_start_up_files():
    assert (SITE / "ultralytics_triplet.pth").is_file()
    assert (SITE / "ultralytics_triplet.start").read_text().strip() == "ultralytics_triplet._startup:install"


def test_startup_line_is_the_documented_one():
    line = (SITE / "ultralytics_triplet.pth").read_text()
    assert line.startswith("import ") and line.count("\n") == 1


@pytest.mark.skipif(os.environ.get("ULTRALYTICS_TRIPLET_TEST_WHEEL") != "1", reason="only under scripts/test.sh")
def test_suite_runs_against_the_installed_wheel():
    import ultralytics_triplet

    assert Path(ultralytics_triplet.__file__).parent == SITE / "ultralytics_triplet"
