"""The plugin manager and the registry it produces.

Plugins come from the ``ultralytics_triplet`` entry-point group, this package's own (``builtin``) included, and are
loaded lazily, once, on the first model build or name lookup. ``ULTRALYTICS_TRIPLET_PLUGINS=a,b`` limits loading to
the named third-party entry points (the built-in plugin always loads). A plugin that fails to import, or whose hook
raises or returns a name already taken, costs a warning naming it; the others still load.

The registry answers what a YAML row may name (:meth:`Registry.check_module_name`) and which names take their input
channel count first (:attr:`Registry.channel_modules`); ``integration.py`` applies it to ultralytics.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from torch import nn
from ultralytics.utils import LOGGER

from . import _compat, _env, hookspecs
from ._text import PREFIX

ENV_PLUGINS = _env.PLUGINS
BUILTIN = "triplet"  # entry-point name of this package's own plugin

_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_cache: tuple[frozenset[int], Registry] | None = None


class UnknownModuleError(KeyError, ValueError):
    """A model YAML names a module that neither ultralytics nor any plugin provides.

    A KeyError where ultralytics raised one (parse_model's ``globals()[m]``), a ValueError for YAML surgery.
    """

    def __str__(self) -> str:
        """Print the message without KeyError's quotes."""
        return str(self.args[0])


@dataclass(frozen=True)
class Registry:
    """What the loaded plugins register: YAML module names and model directories.

    Attributes:
        modules (dict[str, type[nn.Module]]): YAML name -> class, first registration wins.
        owners (dict[str, str]): YAML name -> name of the plugin that registered it.
        channel_modules (frozenset[str]): The names built with their input channel count first
            (``register_channel_modules``): ``MyModule(c1, *args)``.
        model_dirs (tuple[Path, ...]): Directories searched, in order, for model YAMLs by bare name.
        dir_owners (dict[Path, str]): Model directory -> name of the plugin that registered it first.
    """

    modules: dict[str, type[nn.Module]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    channel_modules: frozenset[str] = frozenset()
    model_dirs: tuple[Path, ...] = ()
    dir_owners: dict[Path, str] = field(default_factory=dict)

    def find_model_yaml(self, name: str) -> Path | None:
        """Return the first ``name`` (a bare file name) found under the registered directories, or None."""
        for directory in self.model_dirs:
            hit = next(iter(sorted(directory.rglob(name))), None)
            if hit is not None:
                return hit
        return None

    def check_module_name(self, m: Any, where: str = "") -> None:
        """Raise UnknownModuleError unless a YAML row may name ``m``: registered here, or one of ultralytics' own.

        Args:
            m (Any): The module field of a YAML row.
            where (str): Where the name stands, appended to the message (e.g. " in row 3 of the model YAML").
        """
        if not isinstance(m, str) or not m:
            raise UnknownModuleError(f"module must be a module name string{where}, got {m!r}")
        if m in self.modules or m.startswith("torchvision.ops."):
            return
        if m.startswith("nn.") and isinstance(getattr(nn, m[3:], None), type):
            return
        if m in vars(_compat.tasks()):  # parse_model resolves other names in tasks' globals
            return
        plugin_modules = ", ".join(f"{n} ({self.owners[n]})" for n in self.modules) or "none"
        raise UnknownModuleError(
            f"unknown module '{m}'{where}: it is neither an ultralytics module nor registered by a plugin "
            f"(plugin modules: {plugin_modules})"
        )

    def safe_classes(self) -> list[type[nn.Module]]:
        """Return the registered classes plus the nn.Module classes defined beside them (their building blocks).

        Restricted checkpoint loading must know every class a pickled model references: the registered module and
        its children (gates, conv+BN, ...), which plugins conventionally define in the same Python module.
        """
        found = {}
        for cls in self.modules.values():
            found[cls] = None
            for obj in vars(sys.modules.get(cls.__module__, cls)).values():
                if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == cls.__module__:
                    found[obj] = None
        return list(found)


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading entry points on first use."""
    global _manager
    with _lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            _load_entry_points(pm)
            _manager = pm
        return _manager


def registry() -> Registry:
    """Return the registry of the currently registered plugins (recomputed when plugins change)."""
    global _cache
    with _lock:
        pm = get_plugin_manager()
        key = frozenset(map(id, pm.get_plugins()))
        if _cache is None or _cache[0] != key:
            _cache = (key, _collect(pm))
        return _cache[1]


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register the built-in plugin first, then every allowed third-party entry point, each failure a warning."""
    wanted = os.environ.get(ENV_PLUGINS)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    eps, found = {}, importlib.metadata.entry_points()
    found = found.select(group=hookspecs.PROJECT) if hasattr(found, "select") else found.get(hookspecs.PROJECT, [])
    for ep in found:
        eps.setdefault(ep.name, ep)  # the same distribution twice on sys.path: the first one wins
    builtin = eps.pop(BUILTIN, None)
    try:
        # A source checkout has no entry points: the built-in plugin is registered from its module directly.
        pm.register(builtin.load() if builtin else importlib.import_module(f"{__package__}.builtin"), name=BUILTIN)
    except Exception as e:  # never expected; still, a broken install must not break ultralytics
        LOGGER.warning(f"{PREFIX} built-in plugin failed to load ({type(e).__name__}: {e})")
    for name in sorted(eps):
        if allowed is not None and name not in allowed:
            continue
        try:
            pm.register(eps[name].load(), name=name)
            pm.check_pending()  # a misspelled hook name is reported instead of never being called
        except Exception as e:
            if pm.has_plugin(name):
                pm.unregister(name=name)
            LOGGER.warning(f"{PREFIX} plugin '{name}' ({eps[name].value}) failed to load and was skipped: "
                           f"{type(e).__name__}: {' '.join(str(e).split())}")


def _call(impl, what: str, convert=lambda item: item) -> list:
    """Call one plugin's hook implementation; a failure is a warning naming the plugin and yields nothing."""
    try:
        return [convert(item) for item in impl.function() or []]
    except Exception as e:
        LOGGER.warning(f"{PREFIX} plugin '{impl.plugin_name}' failed in {what}() and was skipped: "
                       f"{type(e).__name__}: {e}")
        return []


def _collect(pm: pluggy.PluginManager) -> Registry:
    """Ask every plugin, in registration order, for its modules (those that take channels too) and model directories."""
    modules, owners, channels, dirs = {}, {}, set(), {}
    for hook, takes_channels in (("register_modules", False), ("register_channel_modules", True)):
        for impl in getattr(pm.hook, hook).get_hookimpls():
            for cls in _call(impl, hook):
                if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
                    LOGGER.warning(f"{PREFIX} plugin '{impl.plugin_name}' registered {cls!r}, which is not an "
                                   "nn.Module class; skipped")
                    continue
                name = cls.__name__
                if name in modules and modules[name] is not cls:
                    LOGGER.warning(f"{PREFIX} module name '{name}' from plugin '{impl.plugin_name}' "
                                   f"({cls.__module__}) clashes with plugin '{owners[name]}' "
                                   f"({modules[name].__module__}); keeping '{owners[name]}'")
                    continue
                modules.setdefault(name, cls)
                owners.setdefault(name, impl.plugin_name)
                if takes_channels:
                    channels.add(name)
    for impl in pm.hook.register_model_dirs.get_hookimpls():
        for d in _call(impl, "register_model_dirs", Path):
            if d.is_dir():
                dirs.setdefault(d, impl.plugin_name)
            else:
                LOGGER.warning(f"{PREFIX} plugin '{impl.plugin_name}' registered model directory '{d}', "
                               "which does not exist; skipped")
    return Registry(modules, owners, frozenset(channels), tuple(dirs), dirs)
