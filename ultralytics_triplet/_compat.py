"""The ultralytics internals this package reads or wraps, each checked: names and behaviours, not study logic.

ultralytics has no plugin API, so this package leans on names and behaviours that are internals, not API. They are
listed here:

Checked by :func:`check` before anything is patched (a missing one: one line naming it, nothing patched):
    ``ultralytics.nn.tasks``: ``parse_model``, ``check_yaml(hard=...)``, ``yaml_model_load``, ``guess_model_task``,
    ``guess_model_scale``, ``torch_safe_load``, ``BaseModel.load``, ``_SafeLoad._build`` / ``_registry`` (8.4+);
    ``ultralytics.utils.checks.AUTOINSTALL``.

Checked by tests of their own (``tests/unit/test_compat.py``, ``tests/integration/test_internals.py``), because they
are behaviours rather than names:
    :data:`TRANSFERRED`           the line ``BaseModel.load`` logs, which the weight transfer annotates;
    :data:`ERROR_MARK`            the lead-in of ``torch_safe_load``'s messages, stripped from ours;
    :data:`PREVIOUS_CHANNELS`     the local of ``parse_model`` that holds the channel count of the row before;
    :func:`cuda_ids_are_physical` how ``select_device`` treats ``CUDA_VISIBLE_DEVICES`` (Ray workers);
    :data:`OTHER_MODEL_CLASSES`   the name parts the ``yolo`` CLI and ``YOLO()`` route to other model classes;
    :data:`METRIC_KEYS`, :data:`TIME_COLUMN`  the validation metric keys and the ``results.csv`` time column;
    :data:`CHECKPOINT_MODEL_KEYS`, :data:`CHECKPOINT_RESUME_KEYS`  what a checkpoint dict holds;
    :data:`SHUFFLE_SEED`, :func:`shuffle_follows_seed`  how ``build_dataloader`` seeds its shuffle, and whether it
                                  follows the training seed (8.4) or not (8.3);
    ``initialize_weights``        resets BatchNorm constants by an exact type test, which ``GateBatchNorm2d`` escapes;
    :func:`exporter_call`, :func:`export_target`  ``Exporter.__call__(model)`` exports a deep copy of the model it is
                                  given (module attributes travel with the copy), as ``args.format`` / ``args.dynamic``
                                  say (which exported graph a trace records);
    :func:`exports_int8`          ``Exporter.export_openvino`` quantizes with ``nncf.quantize(model=...,
                                  ignored_scope=...)`` when the arguments ask for INT8 (``integration.py`` wraps it
                                  beside ``__call__``; one warning line if it moved).

ultralytics' public API (``YOLO`` and its ``train``/``val``/``export``, trainer callbacks, ``LOGGER``, ``TQDM``,
``get_flops``, the dataset checkers, ``LetterBox``, the task model classes) is imported where it is used. What the
study makes of these facts (parsing ``results.csv``, labelling metrics, seeding a run's data order, its progress bar)
lives in ``study/``. Nothing here changes ultralytics: that is ``integration.py``'s job alone.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from . import _env

# ultralytics, torch and importlib.metadata are imported inside the functions that use them: this module is imported
# at interpreter start by the start-up hook, before ultralytics is (and importing ultralytics runs that hook).

DISTRIBUTION = "ultralytics-triplet"
EXPORTER_MODULE = "ultralytics.engine.exporter"  # Model.export imports it on first use
MARK = "_ultralytics_triplet"  # attribute set on every function integration.py installs into ultralytics

TRANSFERRED = "Transferred "  # BaseModel.load logs "Transferred N/M items from pretrained weights"
ERROR_MARK = "ERROR ❌️"  # torch_safe_load's messages start "ERROR ❌️ <path> ..."
ERROR_ADVICE = (" Recommended fixes", " Use an official")  # ... and end with advice about ultralytics' own files
# Name parts that make the `yolo` CLI (ultralytics/cfg/__init__.py: entrypoint) or YOLO() (models/yolo/model.py)
# build another model class than YOLO.
OTHER_MODEL_CLASSES = ("rtdetr", "fastsam", "sam_", "sam2_", "sam2.1_", "sam3", "mobile_sam", "yolo_nas", "-world",
                       "yoloe")
# keys of the validator's results_dict (and results.csv columns) of each task's two headline metrics
METRIC_KEYS = {
    "detect": ("metrics/mAP50-95(B)", "metrics/mAP50(B)"),
    "obb": ("metrics/mAP50-95(B)", "metrics/mAP50(B)"),
    "segment": ("metrics/mAP50-95(M)", "metrics/mAP50(M)"),
    "pose": ("metrics/mAP50-95(P)", "metrics/mAP50(P)"),
    "classify": ("metrics/accuracy_top1", "metrics/accuracy_top5"),
}
TIME_COLUMN = "time"  # results.csv: seconds since the training session started (8.4+; 8.3 writes no such column)
CHECKPOINT_MODEL_KEYS = ("ema", "model")  # where a checkpoint dict keeps its network, preferred first
CHECKPOINT_RESUME_KEYS = ("epoch", "optimizer", "train_args", "train_metrics")
# build_dataloader seeds its shuffle generator with SHUFFLE_SEED + RANK, plus the training seed from 8.4 on
SHUFFLE_SEED = 6148914691236517205
# parse_model resolves a string arg by its local of that name (as `nc` in `[nc]`); at each row this local holds the
# output channel count of the row before (the input channel count at row 0), for the model's scale
PREVIOUS_CHANNELS = "c2"

_REQUIRED_IN_TASKS = ("parse_model", "check_yaml", "yaml_model_load", "guess_model_task", "guess_model_scale",
                      "torch_safe_load")


class IncompatibleUltralyticsError(RuntimeError):
    """The installed ultralytics lacks an internal this package relies on."""


class NotRegisteredError(RuntimeError):
    """A library call needs ultralytics to know the registered names, and ultralytics is not patched."""


def tasks():
    """Return the module ``ultralytics.nn.tasks`` (importing it runs the start-up hook, when armed)."""
    import ultralytics.nn.tasks

    return ultralytics.nn.tasks


def ultralytics_version() -> str:
    """The installed ultralytics release, e.g. ``"8.4.190"``."""
    import ultralytics

    return getattr(ultralytics, "__version__", "unknown")


def version_tuple(version: str) -> tuple[int, ...]:
    """Return the leading numeric parts of a version string: '8.4.190' -> (8, 4, 190)."""
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


# --------------------------------------------------------------------------------------------------------------------
# the supported range: declared once, in pyproject.toml
# --------------------------------------------------------------------------------------------------------------------


@functools.cache
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


def install_hint() -> str:
    """``ultralytics>=8.3.0: pip install 'ultralytics>=8.3.0'``, from the declared range."""
    spec = f"ultralytics{supported_range()}"
    return f"{spec}: pip install '{spec}'"


def is_older_than_supported(version: str) -> bool:
    """Whether ``version`` is below the declared lower bound."""
    v, oldest = version_tuple(version), version_tuple(oldest_supported())
    return bool(v and oldest and v < oldest)


# --------------------------------------------------------------------------------------------------------------------
# the names integration.py wraps, checked before anything changes
# --------------------------------------------------------------------------------------------------------------------


def parameters(function) -> dict:
    """The parameters of ``function`` by name (empty when its signature cannot be read)."""
    try:
        return dict(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return {}


def missing_internals(tasks_module) -> list[str]:
    """Return the internals :func:`check` needs and ``tasks_module`` (or ultralytics.utils.checks) lacks."""
    missing = [f"ultralytics.nn.tasks.{n}" for n in _REQUIRED_IN_TASKS if not callable(getattr(tasks_module, n, None))]
    if not callable(getattr(getattr(tasks_module, "BaseModel", None), "load", None)):
        missing.append("ultralytics.nn.tasks.BaseModel.load")
    if "ultralytics.nn.tasks.check_yaml" not in missing and "hard" not in parameters(tasks_module.check_yaml):
        missing.append("ultralytics.nn.tasks.check_yaml(hard=...)")
    safe = getattr(tasks_module, "_SafeLoad", None)  # restricted loading exists from ultralytics 8.4
    if safe is not None and not (callable(getattr(safe, "_build", None)) and hasattr(safe, "_registry")):
        missing.append("ultralytics.nn.tasks._SafeLoad._build/_registry")
    checks = sys.modules.get("ultralytics.utils.checks")
    if checks is None:
        import ultralytics.utils.checks as checks
    if not hasattr(checks, "AUTOINSTALL"):
        missing.append("ultralytics.utils.checks.AUTOINSTALL")
    return missing


def check(tasks_module) -> None:
    """Raise IncompatibleUltralyticsError, naming what moved, unless every internal the patch needs is in place."""
    missing = missing_internals(tasks_module)
    if missing:
        raise IncompatibleUltralyticsError(
            f"ultralytics {ultralytics_version()} has no {', '.join(missing)}; ultralytics-triplet supports "
            f"{install_hint()}"
        )


def safe_load(tasks_module):
    """``ultralytics.nn.tasks._SafeLoad`` (restricted checkpoint loading), or None before ultralytics 8.4."""
    return getattr(tasks_module, "_SafeLoad", None)


# --------------------------------------------------------------------------------------------------------------------
# patched or not
# --------------------------------------------------------------------------------------------------------------------


def is_patched(tasks_module=None) -> bool:
    """Whether ``ultralytics.nn.tasks`` currently runs this package's wrappers (read from the functions themselves).

    A reloaded module holds fresh, unwrapped functions, so it counts as unpatched. ``None`` reads the module in
    ``sys.modules`` without importing it.
    """
    module = tasks_module if tasks_module is not None else sys.modules.get("ultralytics.nn.tasks")
    return bool(getattr(getattr(module, "parse_model", None), MARK, False))


def require_patched(what: str):
    """Return ``ultralytics.nn.tasks`` if this package's names are registered with it; else raise one line.

    Library functions that hand a model YAML or checkpoint to ultralytics call this instead of patching: patching
    is the start-up hook's and ``register()``'s alone, so ``ULTRALYTICS_TRIPLET_DISABLE=1`` holds for the process.

    Raises:
        NotRegisteredError: If ultralytics is not patched, saying to call ``ultralytics_triplet.register()``.
    """
    module = tasks()
    if is_patched(module):
        return module
    why = f"{_env.DISABLE} is set" if _env.disabled() else "the start-up hook did not patch it"
    raise NotRegisteredError(
        f"{what} needs ultralytics to know this package's modules and configs, and ultralytics is not patched "
        f"({why}): call ultralytics_triplet.register() first"
    )


def original(function):
    """ultralytics' own function behind one of this package's wrappers (the function itself when unwrapped)."""
    return function.__wrapped__ if getattr(function, MARK, False) else function


def original_load():
    """ultralytics' own ``BaseModel.load``."""
    return original(tasks().BaseModel.load)


# --------------------------------------------------------------------------------------------------------------------
# behaviours, each pinned by a test
# --------------------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def no_autoinstall():
    """Turn ultralytics' auto-install of missing requirements off for the duration."""
    from ultralytics.utils import checks

    before = checks.AUTOINSTALL
    checks.AUTOINSTALL = False
    try:
        yield
    finally:
        checks.AUTOINSTALL = before


def without_error_mark(text: str, path: str | Path) -> str:
    """A ``torch_safe_load`` message without its ``ERROR ❌️ <path>`` lead-in and its advice about ultralytics' files."""
    text = text.replace(ERROR_MARK, "").replace(str(path), "").strip(" :")
    for advice in ERROR_ADVICE:
        text = text.split(advice)[0]
    return text.strip()


def cuda_ids_are_physical() -> bool:
    """Whether ``select_device`` writes ``device`` into ``CUDA_VISIBLE_DEVICES`` (8.3: physical ids).

    Later releases read ``device`` as torch indices within the visible devices. Read from the function's source,
    since the behaviour is not otherwise observable without a GPU.
    """
    from ultralytics.utils import torch_utils

    return 'os.environ["CUDA_VISIBLE_DEVICES"] =' in inspect.getsource(torch_utils.select_device)


def checkpoint_model(ckpt: Any):
    """The network a checkpoint dict holds (EMA first), or None."""
    if not isinstance(ckpt, dict):
        return None
    return next((ckpt[k] for k in CHECKPOINT_MODEL_KEYS if ckpt.get(k) is not None), None)


def user_config_dir() -> Path:
    """ultralytics' settings directory (``YOLO_CONFIG_DIR`` moves it)."""
    from ultralytics.utils import USER_CONFIG_DIR

    return Path(USER_CONFIG_DIR)


# --------------------------------------------------------------------------------------------------------------------
# the training loader's shuffle
# --------------------------------------------------------------------------------------------------------------------


@functools.cache
def shuffle_follows_seed() -> bool:
    """Whether ``build_dataloader`` seeds its shuffle generator from the training seed (8.4) or ignores it (8.3).

    The trainer seeds torch with the training seed before it builds its loaders; 8.4 adds that seed to the shuffle
    generator's, 8.3 uses ``SHUFFLE_SEED + RANK`` alone, so two seeds draw the same data order there. Observed by
    building a loader under two seeds of torch's CPU generator (restored afterwards; no other generator is touched).
    """
    import torch
    from ultralytics.data.build import build_dataloader

    cpu = torch.default_generator
    state, seeds = cpu.get_state(), []
    try:
        for seed in (1, 2):
            cpu.manual_seed(seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch on pin_memory without an accelerator, say
                loader = build_dataloader(list(range(4)), batch=2, workers=0, shuffle=True)
            seeds.append(loader.generator.initial_seed())
    finally:
        cpu.set_state(state)
    return seeds[0] != seeds[1]


# --------------------------------------------------------------------------------------------------------------------
# the exporter
# --------------------------------------------------------------------------------------------------------------------


def exporter_call(module):
    """``Exporter.__call__`` of the module ``ultralytics.engine.exporter``, or None where it is not there."""
    cls = getattr(module, "Exporter", None)
    call = vars(cls).get("__call__") if isinstance(cls, type) else None
    return call if inspect.isfunction(call) else None


def export_target(exporter) -> tuple[str, bool]:
    """``(format, dynamic)`` an ultralytics ``Exporter`` was asked for: its ``args.format`` lowercased, as its
    ``__call__`` reads it (8.3 and 8.4), and ``args.dynamic``."""
    args = exporter.args
    return str(getattr(args, "format", "")).lower(), bool(getattr(args, "dynamic", False))


def exports_int8(args: Any) -> bool:
    """Whether ultralytics' export arguments ask for INT8: ``quantize=8`` (8.4, which maps ``int8=True`` onto it) or
    ``int8=True`` (8.3)."""
    return getattr(args, "quantize", None) == 8 or getattr(args, "int8", None) is True
