"""The one module that changes ultralytics: where a YAML name becomes a class.

``install(tasks)`` runs once, right after ``ultralytics.nn.tasks`` executes (the start-up hook, ``_startup.py``), or
from :func:`register`. Nothing else in this package imports this module. It checks every internal it needs first
(``_compat.check``), then wraps four names of ``tasks``:

- ``parse_model``: before each model build the registry is applied (:func:`sync`: registered classes put into
  ``tasks``' globals, where parse_model looks names up with ``globals()[m]``); an unknown name and a YOLOv5-repo
  YAML with ``anchors`` get a clear message; a row of a channel module (``register_channel_modules``) is given the
  channel count of the layer before it as its first argument, in parse_model's own terms;
- ``check_yaml``: a bare YAML name ultralytics cannot find is looked up in the registered model directories, then
  as a named placement (``placements.py``): ``yolov8l-seg-triplet.yaml`` resolves through ultralytics' own
  ``yolov8-seg-triplet.yaml`` + scale logic to a config generated from ``yolov8-seg.yaml``;
- ``_SafeLoad._build`` (ultralytics 8.4+): registered classes join the allow-list of restricted checkpoint loading;
- ``BaseModel.load``: pretrained weights are matched by aligned layers, not by index (``weights.aligned_load``).

and, right after ``ultralytics.engine.exporter`` executes (``_import_hook``), ``Exporter.__call__``: it tells every
TripletAttention of the model it exports its export target, ``(format, dynamic)``, as ultralytics sets ``export`` and
``format`` on its heads, and takes it back after the export, also after one that failed (``_exporting``); and its
``Exporter.export_openvino``: an INT8 export hands NNCF every operation of each TripletAttention as an ignored scope
(:func:`_operations_inside`), so the attention runs in floating point as in the FP32 model and the network around it
in int8.

Plugins are loaded on the first of those calls, never during ultralytics' import (which is still half-way then).
Library modules never patch: they ask ``_compat.require_patched()``, so ``ULTRALYTICS_TRIPLET_DISABLE=1`` holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import re
import threading
from pathlib import Path

from . import _compat
from ._import_hook import after_import, loaded
from ._text import PREFIX

# Sibling modules that import ultralytics (plugins, surgery, placements, weights) and ultralytics itself are imported
# inside the functions that use them: register() may import this module before ultralytics is imported, and
# importing ultralytics runs the start-up hook, which calls install() here; a top-level import would meet this module
# half-way through its own import.

__all__ = ("install", "register", "sync")

_lock = threading.RLock()
_tasks = None  # the patched ultralytics.nn.tasks module
_injected: dict[str, type] = {}  # names this package put into tasks' globals
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` as an ultralytics warning, once per process."""
    if message not in _warned:
        _warned.add(message)
        from ultralytics.utils import LOGGER  # lazy: see the note on imports at the top

        LOGGER.warning(f"{PREFIX} {message}")


def _mark(wrapper, original):
    """Mark ``wrapper`` as this package's and give it ``original``'s name, docs and ``__wrapped__``."""
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _compat.MARK, True)
    return wrapper


def install(tasks) -> None:
    """Patch the module ``ultralytics.nn.tasks`` once; idempotent. Everything needed is checked before anything changes.

    Raises:
        IncompatibleUltralyticsError: If ultralytics' internals moved (nothing is patched then).
    """
    global _tasks
    with _lock:
        if _compat.is_patched(tasks):
            _tasks = tasks
            return
        _compat.check(tasks)
        version = _compat.ultralytics_version()
        if _compat.is_older_than_supported(version):
            _warn_once(f"ultralytics {version} is older than supported; ultralytics-triplet supports "
                       f"{_compat.install_hint()}")
        safe = _compat.safe_load(tasks)
        if not getattr(tasks.BaseModel.load, _compat.MARK, False):
            tasks.BaseModel.load = _wrap_load(tasks.BaseModel.load)
        if safe is not None:
            safe._build = classmethod(_wrap_safe_build(safe._build))
        tasks.check_yaml = _wrap_check_yaml(tasks.check_yaml)
        tasks.parse_model = _wrap_parse_model(tasks.parse_model)  # last: is_patched() reads this one
        _tasks = tasks
        if safe is not None and safe._registry is not None:  # built before we were imported: extend it now
            sync()
        after_import(_compat.EXPORTER_MODULE, _install_exporter)


def register():
    """Patch ultralytics now (importing it if needed) and apply every plugin; return the registry.

    This is the explicit opt-in for processes where the start-up hook did not run (``python -S``, or
    ``ULTRALYTICS_TRIPLET_DISABLE=1``). Calling it again is harmless.
    """
    install(_compat.tasks())
    return sync()


def sync():
    """Make ultralytics see the current registry: names in tasks' globals and the safe-load allow-list."""
    from . import plugins  # lazy: see the note on imports at the top

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
        safe = _compat.safe_load(_tasks)
        if safe is not None and safe._registry is not None:
            safe._registry.update(_safe_entries(registry))
        exporter = loaded(_compat.EXPORTER_MODULE)
        if exporter is not None:  # the exporter imported tasks itself, so it was still executing when install() ran
            _install_exporter(exporter)
        return registry


def _safe_entries(registry) -> dict[str, type]:
    """Return restricted-loading allow-list entries (``"module.QualName": class``) for the registry's classes."""
    return {f"{c.__module__}.{c.__qualname__}": c for c in registry.safe_classes()}


def _wrap_parse_model(parse_model):
    """Return parse_model that first applies the registry, checks the YAML's module names and gives channel modules
    their input channel count."""

    def wrapper(d, ch, *args, **kwargs):
        from .surgery import model_rows  # lazy: see the note on imports at the top

        registry = sync()
        d = _convert_anchor_yaml(d)
        for i, (_, _, m, _) in enumerate(model_rows(d)):
            registry.check_module_name(m, f" in row {i} of the model YAML")
        return parse_model(_with_input_channels(d, registry), ch, *args, **kwargs)

    return _mark(wrapper, parse_model)


def _with_input_channels(d: dict, registry) -> dict:
    """``d`` with each row of a registered channel module reading its input channel count first (a copy if any).

    ``parse_model`` resolves a string arg by its own local of that name (as it reads ``nc`` in ``[nc]``), and its
    local ``c2`` holds the output channel count of the row before, for the model's scale
    (``_compat.PREVIOUS_CHANNELS``). So ``[-1, 1, CBAM, [3]]`` is parsed as ``[-1, 1, CBAM, ["c2", 3]]``:
    ``CBAM(c1, 3)``; the row's own args are never scaled. Only names this package put into tasks' namespace are
    changed: where ultralytics itself knows the name, its parser's handling stays.
    """
    from .surgery import model_rows  # lazy: see the note on imports at the top

    names = {n for n in registry.channel_modules if _injected.get(n) is registry.modules[n]}
    if not names or not any(row[2] in names for row in model_rows(d)):
        return d
    d, offset = dict(d), 0
    for part in ("backbone", "head"):
        rows = []
        for i, (f, n, m, args) in enumerate(d.get(part) or [], offset):
            if m in names:
                if f != -1:
                    raise ValueError(f"row {i} of the model YAML: {m} takes the channel count of the layer before it, "
                                     f"so its 'from' must be -1, got {f!r}")
                args = [_compat.PREVIOUS_CHANNELS, *args]
            rows.append([f, n, m, args])
        d[part], offset = rows, offset + len(rows)
    return d


def _convert_anchor_yaml(d: dict) -> dict:
    """Turn a YOLOv5-repo YAML (``anchors:`` and ``Detect, [nc, anchors]``) into ultralytics' anchor-free form."""
    from .surgery import model_rows  # lazy: see the note on imports at the top

    rows = model_rows(d)
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


def _wrap_check_yaml(check_yaml):
    """Return check_yaml that falls back to the registered model directories, then to named placements, for bare names.

    Every argument passes through as given; only ``hard`` is read and, for the first search, overridden.
    """
    signature = inspect.signature(check_yaml)
    first = next(iter(signature.parameters))

    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        hard = bound.arguments["hard"]
        found = _call(check_yaml, bound, hard=False)
        if found:
            return found
        name = str(bound.arguments[first]).strip()
        if name and Path(name).name == name:
            from . import placements, plugins  # lazy: see the note on imports at the top

            def lookup(bare: str):
                """Find a config by bare name as ultralytics and the plugins do, without generating placements."""
                return _call(check_yaml, bound, **{first: bare, "hard": False}) or plugins.registry().find_model_yaml(
                    bare
                )

            hit = lookup(name) or placements.resolve(name, lookup)
            if hit:
                return str(hit)
        return _call(check_yaml, bound, hard=True) if hard else found

    return _mark(wrapper, check_yaml)


def _call(function, bound: inspect.BoundArguments, **overrides):
    """Call ``function`` with the bound arguments, some replaced."""
    arguments = {**bound.arguments, **overrides}
    call = bound.signature.bind_partial()
    call.arguments.update(arguments)
    return function(*call.args, **call.kwargs)


def _wrap_safe_build(build):
    """Return ``_SafeLoad._build`` whose allow-list also holds the registered classes."""

    def wrapper(cls):
        from . import plugins  # lazy: see the note on imports at the top

        return {**build(), **_safe_entries(plugins.registry())}

    return _mark(wrapper, build)


def _wrap_load(load):
    """Return ``BaseModel.load`` that aligns layer lists, so every pretrained-weight route carries every tensor.

    Every route shares it: ``YOLO(cfg).load(pt)``, ``train(pretrained=pt)``, ``yolo train ... pretrained=pt`` and
    its DDP workers. A source whose layers are the target's one for one goes to ultralytics' ``load`` untouched.
    """

    def wrapper(self, weights, verbose=True):
        from . import weights as transfer  # lazy: see the note on imports at the top

        if transfer.aligned_load(load, self, weights, verbose) is None:
            return load(self, weights, verbose=verbose)
        return None

    return _mark(wrapper, load)


def _install_exporter(module) -> None:
    """Wrap ``Exporter.__call__`` of the executed module ``ultralytics.engine.exporter`` once (see ``_exporting``)."""
    with _lock:
        call = _compat.exporter_call(module)
        if call is None:
            _warn_once(f"ultralytics {_compat.ultralytics_version()} has no {_compat.EXPORTER_MODULE}.Exporter."
                       "__call__; exports record the graph valid at every input size")
        elif not getattr(call, _compat.MARK, False):
            module.Exporter.__call__ = _wrap_export(call)
        _patch_exporter(module)


def _wrap_export(call):
    """Return ``Exporter.__call__`` that runs the export inside ``_exporting`` for its model and arguments."""

    def wrapper(self, *args, **kwargs):
        model = kwargs.get("model", args[0] if args else None)
        with _exporting(self, model):
            return call(self, *args, **kwargs)

    return _mark(wrapper, call)


@contextlib.contextmanager
def _exporting(exporter, model):
    """Within the block, every TripletAttention of ``model`` holds the export target of ``exporter``.

    The target, ``(format, dynamic)`` (``_compat.export_target``), picks the graph a trace of the module records.
    ultralytics' exporter deep-copies the model it is given, and the copy (its ``model`` attribute) carries the target
    with it; both are untold at the end of the block, however it ends.
    """
    from .nn import TripletAttention  # lazy: see the note on imports at the top

    def attention(net) -> list:
        return [m for m in net.modules() if isinstance(m, TripletAttention)] if hasattr(net, "modules") else []

    told, target = attention(model), _compat.export_target(exporter)
    for m in told:
        m.export_target = target
    try:
        yield
    finally:
        for m in told + attention(getattr(exporter, "model", None)):
            vars(m).pop("export_target", None)


# --------------------------------------------------------------------------------------------------------------------
# INT8 OpenVINO export: the attention stays in floating point
# --------------------------------------------------------------------------------------------------------------------

# An INT8 export hands NNCF every operation of each TripletAttention as an ignored scope, as ultralytics does for its
# detection head. Quantized by NNCF's defaults, the attention costs more than in floating point: a FakeQuantize on
# each input of its two broadcast additions (the gates' average) splits the scaling, one fused pass over x in
# OpenVINO, into three, two of them writing a full-size map; and its other work does not get faster in int8 (gate
# convolutions with 2 input channels and 1 output channel, pooling and transposes of small maps). Left in floating
# point, the attention runs as in the FP32 model, and NNCF quantizes its output for the next layer.


def _patch_exporter(exporter) -> None:
    """Wrap ``Exporter.export_openvino`` of the module ``exporter`` once; one warning line if ultralytics moved it."""
    cls = getattr(exporter, "Exporter", None)
    method = getattr(cls, "export_openvino", None)
    if not callable(method):
        _warn_once(f"ultralytics {_compat.ultralytics_version()} has no Exporter.export_openvino: INT8 OpenVINO "
                   "exports quantize TripletAttention with NNCF's defaults, which run it slower")
    elif not getattr(method, _compat.MARK, False):
        cls.export_openvino = _wrap_export_openvino(method)


def _wrap_export_openvino(export_openvino):
    """Return ``Exporter.export_openvino`` whose INT8 quantization leaves every TripletAttention in floating point."""

    def wrapper(self, *args, **kwargs):
        from .nn import TripletAttention  # lazy: see the note on imports at the top

        model = getattr(self, "model", None)
        paths = [n for n, m in model.named_modules() if isinstance(m, TripletAttention)] if model is not None else []
        if not (paths and _compat.exports_int8(getattr(self, "args", None))):
            return export_openvino(self, *args, **kwargs)
        try:
            import nncf
        except ImportError:  # ultralytics installs it next (or says it is missing), after this wrapper has looked
            _warn_once("nncf is not installed: an INT8 OpenVINO export that installs it quantizes TripletAttention "
                       "with NNCF's defaults, which run it slower; export again once it is installed")
            return export_openvino(self, *args, **kwargs)
        with _quantize_ignoring(nncf, paths):
            return export_openvino(self, *args, **kwargs)

    return _mark(wrapper, export_openvino)


@contextlib.contextmanager
def _quantize_ignoring(nncf, paths: list[str]):
    """Within the block, ``nncf.quantize`` also ignores every operation of the modules at ``paths``."""
    quantize = nncf.quantize
    signature = inspect.signature(quantize)
    if not {"model", "ignored_scope"} <= set(signature.parameters):
        _warn_once(f"nncf {getattr(nncf, '__version__', '')}'s quantize takes no model and ignored_scope: NNCF "
                   "quantizes TripletAttention with its defaults, which run it slower")
        yield
        return

    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        scope = _with_attention(nncf, bound.arguments["model"], bound.arguments.get("ignored_scope"), paths)
        return _call(quantize, bound, ignored_scope=scope)

    nncf.quantize = _mark(wrapper, quantize)
    try:
        yield
    finally:
        nncf.quantize = quantize


def _with_attention(nncf, ov_model, scope, paths: list[str]):
    """``scope`` (an ``nncf.IgnoredScope`` or None) with the names of the operations of the modules at ``paths``."""
    found = {p: _operations_inside(ov_model, p) for p in paths}
    if not all(found.values()):
        _warn_once(f"the OpenVINO model names no operation inside TripletAttention "
                   f"{', '.join(p for p, n in found.items() if not n)}: NNCF quantizes it with its defaults, which "
                   "run it slower")
        return scope
    names = list(dict.fromkeys(n for ns in found.values() for n in ns))
    if scope is None:
        return nncf.IgnoredScope(names=names)
    return dataclasses.replace(scope, names=[*scope.names, *(n for n in names if n not in scope.names)])


def _operations_inside(ov_model, path: str) -> list[str]:
    """Names of the operations (constants aside) of ``ov_model`` traced inside the module at ``path``.

    OpenVINO's PyTorch frontend names an operation after the module path it was traced in, ``__module.<path>/aten::...``
    (``__module.model.3/aten::add/Add_4``; a submodule's path continues with dots). A model wrapped for export (such as
    ultralytics' NMS wrapper) puts its own attribute in front: the path is matched as whole dotted parts.
    """
    inside = re.compile(rf"(^|\.){re.escape(path)}(\.|$)")
    return [op.get_friendly_name() for op in ov_model.get_ordered_ops()
            if op.get_type_name() != "Constant" and inside.search(op.get_friendly_name().split("/", 1)[0])]
