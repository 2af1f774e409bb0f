"""ultralytics-triplet: Triplet Attention for the official ultralytics package, registered on install.

Importing this package is cheap: it arms the start-up hook (``_startup``) and loads everything else on first
attribute access, so the interpreter-start line costs almost nothing.
"""

from . import _startup  # noqa: F401  (arms the hook, or patches at once if ultralytics is already imported)
from ._version import __version__

_LAZY = {
    "TripletAttention": "nn",
    "set_formulation": "formulation",
    "get_formulation": "formulation",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "register": "integration",
    "registry": "plugins",
    "get_plugin_manager": "plugins",
    "insert_layers": "surgery",
    "transfer_weights": "weights",
    "build_model": "loading",
    "load_model": "loading",
    "make_shapes_dataset": "data",
    "run_study": "study",
}
__all__ = ("__version__", *_LAZY)


def __getattr__(name: str):
    """Import public names on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    """List the public API."""
    return sorted(__all__)
