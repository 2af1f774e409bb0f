"""The formulation switch as a new process sees it: ``ULTRALYTICS_TRIPLET_FORMULATION`` seeds it at import."""

from __future__ import annotations

import pytest
from helpers import run_python

pytestmark = pytest.mark.compat


def test_the_environment_variable_sets_the_initial_formulation(tmp_path):
    code = ("from ultralytics_triplet import get_formulation, TripletAttention; import torch; "
            "m = TripletAttention(); print('@@', get_formulation(), m.formulation(torch.randn(1, 4, 5, 5)))")
    p = run_python(code, tmp_path, ULTRALYTICS_TRIPLET_FORMULATION="plain")
    assert p.returncode == 0, p.stderr
    assert "@@ plain plain" in p.stdout
    p = run_python(code, tmp_path, ULTRALYTICS_TRIPLET_FORMULATION="fastest")
    assert p.returncode != 0
    assert "ULTRALYTICS_TRIPLET_FORMULATION must be one of auto, plain, got 'fastest'" in p.stderr
