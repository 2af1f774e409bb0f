"""Interpreter-start hook: patch ``ultralytics.nn.tasks`` the moment it is first imported, in any process.

The wheel's ``ultralytics_triplet.pth`` (and, for Python 3.15+, ``ultralytics_triplet.start``, PEP 829) runs this
at every interpreter start. It only puts a finder on ``sys.meta_path``: no torch, ultralytics or numpy is imported
until the program itself imports ultralytics. Set ``ULTRALYTICS_TRIPLET_DISABLE=1`` to turn it off.

The patch itself is ``integration.install``; this module and ``register()`` are the only ways in.
"""

import sys

from ._env import disabled

TARGET = "ultralytics.nn.tasks"


def _patch(module) -> None:
    """Apply the patch to the freshly executed tasks module; a failure is one warning line, never an exception."""
    try:
        from ultralytics_triplet.integration import install

        install(module)
    except Exception as e:
        sys.stderr.write(f"WARNING ultralytics-triplet: not registered with ultralytics ({type(e).__name__}: {e})\n")


class TasksFinder:
    """A meta-path finder that reacts to ``ultralytics.nn.tasks`` only and patches it right after its body runs.

    It delegates the search to the other finders, wraps the found loader's ``exec_module`` for this one call, then
    restores the loader and leaves ``sys.meta_path``.
    """

    def find_spec(self, fullname, path=None, target=None):
        """Find ``ultralytics.nn.tasks`` through the normal finders and arm its loader; ignore everything else."""
        if fullname != TARGET:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot: also keeps the delegation below from finding us again
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            try:
                original(module)
            finally:
                vars(loader).pop("exec_module", None)  # the loader is itself again for reloads and inspect
            _patch(module)

        try:
            loader.exec_module = exec_module
        except AttributeError:  # a loader that takes no attributes: leave ultralytics as it is
            sys.stderr.write(f"WARNING ultralytics-triplet: cannot hook {type(loader).__name__}; not registered\n")
        return spec


def install() -> None:
    """Arm the hook (or patch at once if ultralytics is already imported); idempotent and never raises."""
    if disabled():
        return
    module = sys.modules.get(TARGET)
    if module is not None:
        _patch(module)
    elif not any(isinstance(f, TasksFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, TasksFinder())


install()
