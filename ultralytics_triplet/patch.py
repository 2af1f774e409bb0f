"""Apply the plugin registry to ultralytics: the one place where a YAML name becomes a class.

``install(tasks)`` runs once, right after ``ultralytics.nn.tasks`` executes (see ``_startup.py``), and wraps four
of its names:

- ``parse_model``: before each model build, registered classes are put into ``tasks``' globals, where parse_model
  looks names up (``globals()[m]``); an unknown name and a YOLOv5-repo YAML with ``anchors`` get a clear message;
- ``check_yaml``: a bare YAML name ultralytics cannot find is looked up in the registered model directories, then
  as a named placement (``placements.py``): ``yolov8l-seg-triplet.yaml`` resolves through ultralytics' own
  ``yolov8-seg-triplet.yaml`` + scale logic to a config generated from ``yolov8-seg.yaml``;
- ``_SafeLoad._build``: registered classes join the allow-list of restricted checkpoint loading;
- ``BaseModel.load`` (in ``weights.py``): pretrained weights are matched by aligned layers, not by index.

Plugins are loaded on the first of those calls, never during ultralytics' import (which is still half-way then).
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import threading
from pathlib import Path

from ._text import PREFIX

DISTRIBUTION = "ultralytics-triplet"
_REQUIRED = ("parse_model", "check_yaml", "yaml_model_load")

_lock = threading.RLock()
_tasks = None  # the patched ultralytics.nn.tasks module
_injected: dict[str, type] = {}  # names this package put into tasks' globals
_warned: set[str] = set()


class IncompatibleUltralyticsError(RuntimeError):
    """The installed ultralytics lacks the internals this plugin patches."""


class UnknownModuleError(KeyError, ValueError):
    """A model YAML names a module that neither ultralytics nor any plugin provides.

    A KeyError where ultralytics raised one (parse_model's ``globals()[m]``), a ValueError for YAML surgery.
    """

    def __str__(self) -> str:
        """Print the message without KeyError's quotes."""
        return str(self.args[0])


def _version_tuple(version: str) -> tuple[int, ...]:
    """Return the leading numeric parts of a version string: '8.4.190' -> (8, 4, 190)."""
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


@functools.lru_cache(maxsize=None)
def supported_range() -> str:
    """Return the ultralytics requirement this package declares, e.g. ``">=8.3.0"``: the one source of the range.

    Read from the installed distribution's metadata (``pyproject.toml``'s dependency as installed), else, in a bare
    checkout, from ``pyproject.toml`` itself; ``""`` when neither is there.
    """
    import importlib.metadata

    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        requirements = re.findall(r'"(ultralytics[^"]*)"', pyproject.read_text()) if pyproject.is_file() else []
    for requirement in requirements:
        m = re.match(r"ultralytics\s*([<>=!~][^;]*)?(;|$)", requirement.strip())
        if m:
            return (m[1] or "").replace(" ", "")
    return ""


def oldest_supported() -> str:
    """Return the lowest ultralytics release the declared range admits (``"8.3.0"``), or ``""`` if it has none."""
    m = re.search(r">=\s*([\d.]+)", supported_range())
    return m[1] if m else ""


def _install_hint() -> str:
    """``ultralytics>=8.3.0: pip install 'ultralytics>=8.3.0'``, from the declared range."""
    spec = f"ultralytics{supported_range()}"
    return f"{spec}: pip install '{spec}'"


def _warn_once(message: str) -> None:
    """Log ``message`` as an ultralytics warning, once per process."""
    if message not in _warned:
        _warned.add(message)
        # Imported here: on ultralytics 8.3 importing ultralytics.utils runs ultralytics/__init__, which imports
        # ultralytics.nn.tasks, whose import hook imports this module: a top-level import would be circular.
        from ultralytics.utils import LOGGER

        LOGGER.warning(f"{PREFIX} {message}")


def is_patched(tasks) -> bool:
    """Whether ``tasks`` (the ultralytics.nn.tasks module) currently runs this package's wrappers.

    Read from the functions themselves, so a reloaded module (fresh, unwrapped functions) counts as unpatched.
    """
    return getattr(getattr(tasks, "parse_model", None), "_ultralytics_triplet", False)


def install(tasks) -> None:
    """Patch the module ``ultralytics.nn.tasks`` once; idempotent. Everything needed is checked before anything changes.

    Raises:
        IncompatibleUltralyticsError: If ultralytics' internals moved (nothing is patched then).
    """
    global _tasks
    with _lock:
        if is_patched(tasks):
            _tasks = tasks
            return
        version = getattr(sys.modules.get("ultralytics"), "__version__", "unknown")
        missing = [f"ultralytics.nn.tasks.{n}" for n in _REQUIRED if not callable(getattr(tasks, n, None))]
        if not callable(getattr(getattr(tasks, "BaseModel", None), "load", None)):
            missing.append("ultralytics.nn.tasks.BaseModel.load")
        if "ultralytics.nn.tasks.check_yaml" not in missing and "hard" not in _parameters(tasks.check_yaml):
            missing.append("ultralytics.nn.tasks.check_yaml(hard=...)")
        safe = getattr(tasks, "_SafeLoad", None)  # restricted loading exists from ultralytics 8.4
        if safe is not None and not (callable(getattr(safe, "_build", None)) and hasattr(safe, "_registry")):
            missing.append("ultralytics.nn.tasks._SafeLoad._build/_registry")
        if missing:
            raise IncompatibleUltralyticsError(
                f"ultralytics {version} has no {', '.join(missing)}; ultralytics-triplet supports {_install_hint()}"
            )
        v, oldest = _version_tuple(version), _version_tuple(oldest_supported())
        if v and oldest and v < oldest:
            _warn_once(f"ultralytics {version} is older than supported; ultralytics-triplet supports {_install_hint()}")
        tasks.parse_model = _wrap_parse_model(tasks.parse_model)
        tasks.check_yaml = _wrap_check_yaml(tasks.check_yaml)
        from .weights import install_load_patch

        install_load_patch(tasks)  # pretrained weights: layer-aligned, inserted layers start as pass-throughs
        if safe is not None:
            safe._build = classmethod(_wrap_safe_build(safe._build))
        _tasks = tasks
        if safe is not None and safe._registry is not None:  # built before we were imported: extend it now
            sync()


def register():
    """Patch ultralytics now (importing it if needed) and apply every plugin; return the registry.

    This is the explicit opt-in for processes where the start-up hook did not run (``python -S``, or
    ``ULTRALYTICS_TRIPLET_DISABLE=1``). Calling it again is harmless.
    """
    import ultralytics.nn.tasks as tasks

    install(tasks)
    return sync()


def sync():
    """Make ultralytics see the current registry: names in tasks' globals and the safe-load allow-list."""
    from . import plugins

    with _lock:
        registry = plugins.registry()
        namespace = vars(_tasks)
        for name in [n for n in _injected if registry.modules.get(n) is not _injected[n]]:  # unregistered since
            if namespace.get(name) is _injected.pop(name):
                del namespace[name]
        for name, cls in registry.modules.items():
            existing = namespace.get(name)
            if existing is None or existing is cls:
                namespace[name] = _injected[name] = cls
            else:
                where = getattr(existing, "__module__", "ultralytics.nn.tasks")
                _warn_once(
                    f"module name '{name}' from plugin '{registry.owners[name]}' ({cls.__module__}) clashes with "
                    f"ultralytics' {where}.{name}; keeping ultralytics' class"
                )
        safe = getattr(_tasks, "_SafeLoad", None)
        if safe is not None and safe._registry is not None:
            safe._registry.update(_safe_entries(registry))
        return registry


def _safe_entries(registry) -> dict[str, type]:
    """Return restricted-loading allow-list entries (``"module.QualName": class``) for the registry's classes."""
    return {f"{c.__module__}.{c.__qualname__}": c for c in registry.safe_classes()}


def _wrap_parse_model(parse_model):
    """Return parse_model that first applies the registry and checks the YAML's module names."""

    @functools.wraps(parse_model)
    def wrapper(d, ch, *args, **kwargs):
        sync()
        d = _convert_anchor_yaml(d)
        for i, (_, _, m, _) in enumerate(d.get("backbone", []) + d.get("head", [])):
            check_module_name(m, f" in row {i} of the model YAML")
        return parse_model(d, ch, *args, **kwargs)

    wrapper._ultralytics_triplet = True
    return wrapper


def check_module_name(m, where: str = "") -> None:
    """Raise UnknownModuleError unless parse_model can resolve the YAML module name ``m`` (after ``register()``).

    Args:
        m: The module field of a YAML row.
        where (str): Where the name stands, appended to the message (e.g. " in row 3 of the model YAML").
    """
    from torch import nn

    if not isinstance(m, str) or not m:
        raise UnknownModuleError(f"module must be a module name string{where}, got {m!r}")
    if m.startswith("nn.") and isinstance(getattr(nn, m[3:], None), type):
        return
    if m.startswith("torchvision.ops.") or m in vars(_tasks):
        return
    registry = sync()
    plugin_modules = ", ".join(f"{n} ({registry.owners[n]})" for n in registry.modules) or "none"
    raise UnknownModuleError(
        f"unknown module '{m}'{where}: it is neither an ultralytics module nor registered by a plugin "
        f"(plugin modules: {plugin_modules})"
    )


def _convert_anchor_yaml(d: dict) -> dict:
    """Turn a YOLOv5-repo YAML (``anchors:`` and ``Detect, [nc, anchors]``) into ultralytics' anchor-free form."""
    rows = d.get("backbone", []) + d.get("head", [])
    if "anchors" not in d and not any(isinstance(r[3], list) and "anchors" in r[3] for r in rows):
        return d
    _warn_once(
        "this model YAML is in the YOLOv5-repo format (anchors); ultralytics builds an anchor-free head, so "
        "'anchors' was dropped from it and the head's args. Weights trained in the YOLOv5 repo will not load into it"
    )
    d = {k: v for k, v in d.items() if k != "anchors"}
    for part in ("backbone", "head"):
        d[part] = [[f, n, m, [a for a in args if a != "anchors"]] for f, n, m, args in d.get(part, [])]
    return d


def _parameters(function) -> dict:
    """The parameters of ``function`` by name (empty when its signature cannot be read)."""
    try:
        return dict(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return {}


def _wrap_check_yaml(check_yaml):
    """Return check_yaml that falls back to the registered model directories, then to named placements, for bare names.

    Every argument passes through as given; only ``hard`` is read and, for the first search, overridden.
    """
    signature = inspect.signature(check_yaml)
    first = next(iter(signature.parameters))

    @functools.wraps(check_yaml)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        hard = bound.arguments["hard"]
        found = _call(check_yaml, bound, hard=False)
        if found:
            return found
        name = str(bound.arguments[first]).strip()
        if name and Path(name).name == name:
            from . import placements, plugins

            def lookup(bare: str):
                """Find a config by bare name as ultralytics and the plugins do, without generating placements."""
                return _call(check_yaml, bound, **{first: bare, "hard": False}) or plugins.registry().find_model_yaml(
                    bare
                )

            hit = lookup(name) or placements.resolve(name, lookup)
            if hit:
                return str(hit)
        return _call(check_yaml, bound, hard=True) if hard else found

    return wrapper


def _call(function, bound: inspect.BoundArguments, **overrides):
    """Call ``function`` with the bound arguments, some replaced."""
    arguments = {**bound.arguments, **overrides}
    call = bound.signature.bind_partial()
    call.arguments.update(arguments)
    return function(*call.args, **call.kwargs)


def _wrap_safe_build(build):
    """Return ``_SafeLoad._build`` whose allow-list also holds the registered classes."""

    @functools.wraps(build)
    def wrapper(cls):
        from . import plugins

        return {**build(), **_safe_entries(plugins.registry())}

    return wrapper
