"""What pyproject.toml declares about Pythons is one statement: ``requires-python``'s lower bound, the oldest Python
classifier (the oldest Python scripts/test.sh tests) and ruff's target are the same version, and the installed
wheel's metadata says the same as the checkout's file."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
CLASSIFIER = re.compile(r"Programming Language :: Python :: (3\.\d+)$")


def version(text: str) -> tuple[int, ...]:
    """'3.9' -> (3, 9)."""
    return tuple(int(n) for n in text.split("."))


def declared() -> tuple[str, list[str]]:
    """(requires-python, the X.Y Python classifiers) of the installed distribution."""
    meta = importlib.metadata.metadata("ultralytics-triplet")
    pythons = [m[1] for c in meta.get_all("Classifier") or [] if (m := CLASSIFIER.match(c))]
    return meta["Requires-Python"], pythons


def test_requires_python_starts_at_the_oldest_declared_python():
    requires, pythons = declared()
    assert pythons, "no 'Programming Language :: Python :: 3.X' classifier: scripts/test.sh has no Python to test"
    lower = re.fullmatch(r">=\s*(3\.\d+)", requires.strip())
    assert lower, f"requires-python should be a plain lower bound, got {requires!r}"
    assert version(lower[1]) == min(map(version, pythons))


def test_the_classifiers_name_every_minor_version_between_the_oldest_and_the_newest():
    _, pythons = declared()
    minors = sorted(version(p)[1] for p in pythons)
    assert minors == list(range(minors[0], minors[-1] + 1))


def test_ruff_checks_the_code_for_the_oldest_declared_python():
    if not PYPROJECT.is_file():
        pytest.skip(f"no {PYPROJECT} beside the tests")
    target = re.search(r'^target-version\s*=\s*"py3(\d+)"', PYPROJECT.read_text(encoding="utf-8"), re.M)
    assert target, "pyproject.toml sets no ruff target-version"
    _, pythons = declared()
    assert (3, int(target[1])) == min(map(version, pythons))
