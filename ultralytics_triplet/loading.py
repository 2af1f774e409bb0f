"""Turn whatever a user hands over (a YAML name or path, a model dict, a checkpoint, a module) into a model.

Every YAML goes through ``ultralytics.nn.tasks.yaml_model_load`` and every checkpoint through ultralytics' own loader
(``load_checkpoint``, ``attempt_load_one_weight`` before 8.4), so name resolution, the legacy module remaps and
``ULTRALYTICS_SAFE_LOAD`` are ultralytics' own. Nothing here downloads: a checkpoint must be a local file.

Examples:
    >>> from ultralytics_triplet.loading import build_model, load_checkpoint, load_model
    >>> net = build_model("yolov5n-triplet.yaml", nc=3)  # DetectionModel, scale n
    >>> model, ckpt = load_checkpoint("runs/detect/train/weights/best.pt")
    >>> frozen = load_model("best.pt")  # float32, eval, CPU; a module passed in is copied, never changed
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from . import _compat
from ._checks import CHECKPOINT_SUFFIX, YAML_SUFFIXES, check_checkpoint, check_model_lists, fail
from ._text import one_line

__all__ = (
    "YAML_SUFFIXES",
    "build_model",
    "check_model_dict",
    "check_source",
    "layer_list",
    "load_checkpoint",
    "load_model",
    "load_model_yaml",
)

_TASK_MODELS = {
    "detect": "DetectionModel",
    "segment": "SegmentationModel",
    "pose": "PoseModel",
    "obb": "OBBModel",
    "classify": "ClassificationModel",
}


def load_model_yaml(cfg: str | Path) -> dict:
    """Resolve and read a model YAML as ultralytics does (``yolov5n-triplet.yaml`` is ``yolov5-triplet.yaml``, scale n).

    Args:
        cfg (str | Path): A bare name ultralytics (or a plugin) knows, or a path; a missing suffix means ``.yaml``.

    Returns:
        (dict): The model dict, with ``scale`` and ``yaml_file`` set by ultralytics from the name.

    Raises:
        FileNotFoundError: If the YAML does not exist.
        ValueError: If the name is not a YAML one or the file is not readable YAML.
        NotRegisteredError: If ultralytics is not patched (``ULTRALYTICS_TRIPLET_DISABLE=1`` before ``register()``).
    """
    tasks = _compat.require_patched("reading a model YAML")
    path = Path(cfg)
    if not path.suffix:
        path = path.with_suffix(".yaml")
    if path.suffix.lower() not in YAML_SUFFIXES:
        raise ValueError(f"cfg must be a model YAML (.yaml or .yml), got '{cfg}'")
    if path.name != str(path) and not path.is_file():  # a path, not a bare name: never looked up elsewhere
        raise FileNotFoundError(f"model YAML '{path}' not found")
    try:
        return tasks.yaml_model_load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"model YAML '{path}' not found (not a file, nor an ultralytics model name)") from None
    except Exception as e:  # YAMLError (8.3 lets it through; 8.4 reports it as a ValueError)
        raise ValueError(f"'{path}' is not a readable model YAML: {one_line(e)}") from None


def build_model(cfg: str | Path | dict, nc: int | None = None) -> nn.Module:
    """Build the ultralytics task model a model YAML describes.

    Args:
        cfg (str | Path | dict): Model YAML name or path, or a model dict (copied, never changed).
        nc (int | None): Number of classes, overriding the YAML's ``nc``.

    Returns:
        (nn.Module): A ``DetectionModel`` (or the segment/pose/obb/classify model the YAML's head implies).

    Raises:
        FileNotFoundError: If the YAML does not exist.
        ValueError: If the YAML is unreadable or does not build into a model.
        NotRegisteredError: If ultralytics is not patched.
    """
    tasks = _compat.require_patched("building a model")
    d = copy.deepcopy(cfg) if isinstance(cfg, dict) else load_model_yaml(cfg)
    check_model_lists(d, "the model dict" if isinstance(cfg, dict) else f"'{cfg}'")
    if nc is not None:
        d["nc"] = int(nc)  # set here rather than by the nc argument, which logs an 'Overriding' line
    try:
        cls = getattr(tasks, _TASK_MODELS.get(tasks.guess_model_task(d), "DetectionModel"))
        return cls(d, verbose=False)
    except Exception as e:
        raise ValueError(f"'{cfg}' does not build into a model: {type(e).__name__}: {one_line(e)}") from None


def check_model_dict(d: dict, source: str | Path | dict = "the model dict") -> None:
    """Parse a model dict with ultralytics' ``parse_model`` (no forward pass), so bad rows fail before anything else.

    Raises:
        ValueError: If the dict does not parse, naming ``source``.
        NotRegisteredError: If ultralytics is not patched.
    """
    tasks = _compat.require_patched("building a model")
    probe = copy.deepcopy(d)
    if probe.get("scales") and not probe.get("scale"):
        probe["scale"] = next(iter(probe["scales"]))  # any scale will do; avoids parse_model's 'assuming n' warning
    try:
        tasks.parse_model(probe, ch=probe.get("channels", 3), verbose=False)
    except Exception as e:
        raise ValueError(f"the new model does not build from {source}: {type(e).__name__}: {one_line(e)}") from None


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict]:
    """Load a local ultralytics checkpoint through ultralytics' own loader; return its float32 model and the dict.

    ``torch_safe_load`` does the reading, so ``ULTRALYTICS_SAFE_LOAD=1`` (weights-only unpickling against ultralytics'
    allow-list, which this package's registered classes join) and the legacy module remaps are ultralytics' own. One
    thing is held back: ultralytics pip-installs a module a checkpoint names but Python lacks; here that is an error,
    since a file must not choose what gets installed.

    Raises:
        FileNotFoundError: If ``path`` is not a file (nothing is ever downloaded).
        ValueError: If the file is not a readable ultralytics checkpoint, or its format is refused.
        NotRegisteredError: If ultralytics is not patched.
    """
    tasks = _compat.require_patched("loading a checkpoint")
    path = check_checkpoint("checkpoint", path)  # checked here: ultralytics would look a bare name up online
    try:
        with _compat.no_autoinstall():
            ckpt = tasks.torch_safe_load(str(path))[0]
    except Exception as e:
        reason = _compat.without_error_mark(one_line(e), path) or type(e).__name__
        raise ValueError(f"'{path}' is not a readable checkpoint: {reason}") from None
    model = _compat.checkpoint_model(ckpt)
    if not isinstance(model, nn.Module):
        raise ValueError(f"'{path}' is not an ultralytics checkpoint: no 'ema' or 'model' module in it")
    return model.float().eval(), ckpt


def check_source(source: str | Path | nn.Module, param: str = "source") -> str:
    """Say what a model source is, cheaply: ``"module"``, ``"checkpoint"`` (a local ``.pt`` file) or ``"yaml"``.

    Nothing is loaded. A checkpoint must exist (it is never looked up online); a YAML path must exist, a bare YAML name
    is resolved later, as ultralytics resolves it.

    Raises:
        ValueError: If the suffix is neither ``.pt`` nor a YAML one, naming ``param``.
        FileNotFoundError: If a checkpoint or a YAML path does not exist.
    """
    if isinstance(source, nn.Module):
        return "module"
    path = Path(str(source))
    suffix = path.suffix.lower()
    if suffix == CHECKPOINT_SUFFIX:
        check_checkpoint(param, path)
        return "checkpoint"
    if suffix not in YAML_SUFFIXES:
        raise fail(ValueError, param, f"'{source}' is neither a {CHECKPOINT_SUFFIX} checkpoint nor a .yaml model "
                   "config")
    if path.name != str(source) and not path.is_file():
        raise fail(FileNotFoundError, param, f"'{source}' not found (or not a file)")
    return "yaml"


def load_model(source: str | Path | nn.Module, nc: int | None = None) -> nn.Module:
    """Return a float32 model in eval mode on the CPU from a ``.pt`` checkpoint, a model YAML or dict, or a module.

    Args:
        source (str | Path | dict | nn.Module): Checkpoint, YAML name/path, model dict, an ultralytics model, or a
            ``YOLO(...)`` wrapper. A module is deep-copied, so the caller's model is never changed.
        nc (int | None): Number of classes for a model built from a YAML.

    Raises:
        FileNotFoundError: If a named file does not exist.
        ValueError: If the source is neither a readable checkpoint nor a buildable model YAML.
    """
    if isinstance(source, dict):
        model = build_model(source, nc=nc)
    else:
        kind = check_source(source)
        if kind == "module":
            # ultralytics' Model is imported here: importing ultralytics.engine runs ultralytics' whole import
            from ultralytics.engine.model import Model

            model = copy.deepcopy(source.model if isinstance(source, Model) else source)  # YOLO(...) wraps the network
        elif kind == "checkpoint":
            model = load_checkpoint(source)[0]
        else:
            model = build_model(source, nc=nc)
    return model.float().eval().cpu()


def layer_list(obj: Any, what: str = "model") -> nn.Sequential:
    """Find the ``nn.Sequential`` of layers in an ultralytics model (or a ``YOLO`` wrapper), or accept one directly.

    Raises:
        ValueError: If ``obj`` has no layer list.
    """
    for _ in range(4):  # Sequential, DetectionModel.model, YOLO.model.model, ...
        if isinstance(obj, nn.Sequential):
            return obj
        obj = getattr(obj, "model", None)
    raise ValueError(f"{what} has no layer list: expected an ultralytics model or its .model nn.Sequential")
