"""Interpreter-start hook: patch ``ultralytics.nn.tasks`` the moment it is first imported, in any process.

The wheel's ``ultralytics_triplet.pth`` (and, for Python 3.15+, ``ultralytics_triplet.start``, PEP 829) runs this
at every interpreter start. It only puts a finder on ``sys.meta_path`` (``_import_hook``): no torch, ultralytics or
numpy is imported until the program itself imports ultralytics. Set ``ULTRALYTICS_TRIPLET_DISABLE=1`` to turn it off.

The patch itself is ``integration.install``; this module and ``register()`` are the only ways in.
"""

import sys

from ._env import disabled
from ._import_hook import after_import

TARGET = "ultralytics.nn.tasks"


def _patch(module) -> None:
    """Apply the patch to the freshly executed tasks module; a failure is one warning line, never an exception."""
    try:
        from ultralytics_triplet.integration import install

        install(module)
    except Exception as e:
        sys.stderr.write(f"WARNING ultralytics-triplet: not registered with ultralytics ({type(e).__name__}: {e})\n")


def install() -> None:
    """Arm the hook (or patch at once if ultralytics is already imported); idempotent and never raises."""
    if not disabled():
        after_import(TARGET, _patch)


install()
