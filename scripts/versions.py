"""Print the Python, torch and ultralytics the running interpreter tests with, in one line.

The test runner (noxfile.py) runs it in each session's environment to name the session's step, e.g.
``Python 3.9.18, torch 2.8.0+cu128, ultralytics 8.4.190``; a package that is not installed is left out. ultralytics is
read from the installed metadata (the first on ``sys.path``, so a release put on ``PYTHONPATH`` counts), not imported:
its first import writes a settings file.
"""

from __future__ import annotations

import importlib.metadata
import platform


def ultralytics_version() -> str:
    """The version of the ultralytics this interpreter imports, or ``"missing"``."""
    try:
        return importlib.metadata.version("ultralytics")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def torch_version() -> str:
    """torch's own version string, with its build tag (``2.14.1+cu130``), or ``"missing"``."""
    try:
        import torch
    except ImportError:
        return "missing"
    return torch.__version__


if __name__ == "__main__":
    found = {"Python": platform.python_version(), "torch": torch_version(), "ultralytics": ultralytics_version()}
    print(", ".join(f"{name} {version}" for name, version in found.items() if version != "missing"))
