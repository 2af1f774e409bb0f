"""Run a function right after a named module's body has executed: a one-shot ``sys.meta_path`` finder. Imports ``sys``.

The finder reacts to one module name only (as virtualenv's ``_virtualenv.py`` does for distutils): it delegates the
search to the other finders, wraps the found loader's ``exec_module`` for this one call, then puts the loader back as it
was and leaves ``sys.meta_path``. The start-up hook (``_startup``) waits for ``ultralytics.nn.tasks`` this way, and the
patch (``integration``) for ultralytics' exporter.
"""

import sys


class AfterImport:
    """A meta-path finder that calls ``callback(module)`` right after the module ``name`` executes, once."""

    def __init__(self, name: str, callback) -> None:
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        """Find the module through the normal finders and arm its loader; ignore every other name."""
        if fullname != self.name:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)  # one shot: also keeps the delegation below from finding us again
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        loader, callback = spec.loader, self.callback
        original = loader.exec_module

        def exec_module(module):
            try:
                original(module)
            finally:
                vars(loader).pop("exec_module", None)  # the loader is itself again for reloads and inspect
            callback(module)

        try:
            loader.exec_module = exec_module
        except AttributeError:  # a loader that takes no attributes: leave the module as it is
            sys.stderr.write(f"WARNING ultralytics-triplet: cannot hook {type(loader).__name__} for {fullname}\n")
        return spec


def loaded(name: str):
    """The module ``name`` if it is imported and has finished executing, else None."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module


def after_import(name: str, callback) -> None:
    """Call ``callback(module)`` right after the module ``name`` executes, or at once if it already has.

    Arming it again for the same name and callback while it waits changes nothing. A module that is executing right
    now (it imported the caller) gets nothing here: the caller calls ``callback`` once it has (see ``loaded``).
    """
    if name in sys.modules:
        module = loaded(name)
        if module is not None:
            callback(module)
    elif not any(isinstance(f, AfterImport) and (f.name, f.callback) == (name, callback) for f in sys.meta_path):
        sys.meta_path.insert(0, AfterImport(name, callback))
