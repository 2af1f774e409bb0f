"""Model surgery: insert layers into an ultralytics model YAML and carry pretrained weights across.

Three steps take a stock YOLO model to one with Triplet Attention at chosen places without losing its training:

1. :func:`insert_layers` rewrites a model dict so a new row follows each chosen layer and everything that used that
   layer's output now uses the new row's output instead (``from`` indices rewired, every other index shifted).
2. :func:`transfer_weights` copies a plain model's (or checkpoint's) parameters and buffers into the new model by
   aligning the two layer lists, so the inserted layers are skipped and every original layer gets its own tensors.
3. :func:`write_yaml` saves the new dict as an ultralytics model YAML with each inserted row marked by a comment.

Examples:
    >>> from ultralytics.nn.tasks import DetectionModel
    >>> d, rows = insert_layers_with_rows("yolov8n.yaml", after=[4, 6, 9])
    >>> model = DetectionModel(d, verbose=False)
    >>> report = transfer_weights(model, "yolov8n.pt")  # a local checkpoint; nothing is downloaded
    >>> write_yaml(d, "yolov8n-triplet.yaml", rows)
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = (
    "INSERTED_COMMENT",
    "TransferReport",
    "insert_layers",
    "insert_layers_with_rows",
    "load_model_dict",
    "transfer_weights",
    "write_yaml",
)

INSERTED_COMMENT = "# inserted by ultralytics-triplet"
_LOAD_TIME_KEYS = ("scale", "yaml_file")  # set by yaml_model_load from the file name, never read from the file


# --------------------------------------------------------------------------------------------------------------------
# insert_layers
# --------------------------------------------------------------------------------------------------------------------


def insert_layers(
    cfg: str | Path | dict, after: int | Iterable[int], module: str = "TripletAttention", args: Sequence = ()
) -> dict:
    """Return a model dict with a ``[-1, 1, module, args]`` row inserted after each listed layer.

    Layer indices count backbone and head rows together, as ``parse_model`` does. The new row consumes layer ``j``'s
    output, and every later consumer of ``j`` (an absolute ``j``, a negative index that resolves to ``j``, or the
    implicit ``-1`` of row ``j + 1``) consumes the new row instead; every other index is shifted so it keeps pointing
    at the same layer. A row inserted after a backbone layer stays in the backbone.

    Args:
        cfg (str | Path | dict): A model YAML name resolved as ultralytics resolves it (``"yolov8n.yaml"`` is
            ``yolov8.yaml`` at scale ``n``), a path to a YAML, or a model dict (deep-copied, never mutated).
        after (int | Iterable[int]): Original layer indices to insert after (any order; no duplicates).
        module (str): Module name as a YAML row spells it; must resolve in ``ultralytics.nn.tasks`` (where
            ``import ultralytics_triplet`` registers ``TripletAttention``) or be ``nn.*`` / ``torchvision.ops.*``.
        args (Sequence): The inserted rows' arguments (copied into each row as a list).

    Returns:
        (dict): A model dict for ``DetectionModel(d)`` and the other task models. A ``scale`` implied by the source
            name is kept; ``yaml_file`` (when known) names a ``-triplet`` variant of the source.

    Raises:
        FileNotFoundError: If ``cfg`` names a YAML that does not exist.
        ValueError: If ``cfg`` is malformed, ``module`` is unknown, or an index in ``after`` is not an int, out of
            range or repeated.

    Examples:
        >>> d = insert_layers("yolov5n.yaml", after=[9])
        >>> d["backbone"][-1]
        [-1, 1, 'TripletAttention', []]
    """
    return insert_layers_with_rows(cfg, after, module, args)[0]


def insert_layers_with_rows(
    cfg: str | Path | dict, after: int | Iterable[int], module: str = "TripletAttention", args: Sequence = ()
) -> tuple[dict, list[int]]:
    """Do what :func:`insert_layers` does and also return the inserted rows' new layer indices.

    Args:
        cfg (str | Path | dict): Model YAML name, path or dict, as for :func:`insert_layers`.
        after (int | Iterable[int]): Original layer indices to insert after.
        module (str): Module name of the inserted rows.
        args (Sequence): Arguments of the inserted rows.

    Returns:
        (tuple[dict, list[int]]): The new model dict and the sorted indices of the inserted rows in it (what
            :func:`write_yaml` marks with a comment and what ``model.model[i]`` holds after building).
    """
    from .patch import check_module_name, register

    d = load_model_dict(cfg)
    register()  # plugins are applied lazily: make sure their names are in tasks' globals now
    check_module_name(module)
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise ValueError(f"args must be a list of the inserted module's arguments, got {args!r}")
    rows = _rows(d)
    points = _check_after(after, len(rows))
    new_index, out_index = _index_maps(len(rows), points)

    new_rows: list[list] = []
    for i, (f, n, m, a) in enumerate(rows):
        new_rows.append([_remap_from(f, i, new_index, out_index), n, m, a])
        if i in points:
            new_rows.append([-1, 1, module, copy.deepcopy(list(args))])

    n_backbone = len(d["backbone"]) + sum(j < len(d["backbone"]) for j in points)
    d["backbone"], d["head"] = new_rows[:n_backbone], new_rows[n_backbone:]
    if d.get("yaml_file"):
        p = Path(d["yaml_file"])
        d["yaml_file"] = str(p.with_name(f"{p.stem}-triplet{p.suffix}"))
    return d, [new_index[j] + 1 for j in sorted(points)]


def load_model_dict(cfg: str | Path | dict) -> dict:
    """Load a model dict the way ultralytics does, or deep-copy a given one, and check its rows.

    Args:
        cfg (str | Path | dict): Model YAML name or path (a missing suffix means ``.yaml``), or a model dict.

    Returns:
        (dict): A fresh dict with ``backbone`` and ``head`` row lists (and ``scale`` when the name implies one).

    Raises:
        FileNotFoundError: If the YAML does not exist.
        ValueError: If the suffix is not a YAML one or the rows are malformed.
    """
    if isinstance(cfg, dict):
        d = copy.deepcopy(cfg)
    elif isinstance(cfg, (str, Path)):
        d = _load_yaml_cfg(Path(cfg))
    else:
        raise ValueError(f"cfg must be a model YAML name, path or dict, got {type(cfg).__name__}")
    for key in ("backbone", "head"):
        if not isinstance(d.get(key), list):
            raise ValueError(f"model dict needs a '{key}' list of [from, number, module, args] rows")
    _check_rows(_rows(d))
    return d


def _load_yaml_cfg(path: Path) -> dict:
    """Resolve and load a model YAML with ``ultralytics.nn.tasks.yaml_model_load``."""
    from ultralytics.nn.tasks import yaml_model_load

    if not path.suffix:
        path = path.with_suffix(".yaml")
    if path.suffix.lower() not in {".yaml", ".yml"}:
        raise ValueError(f"cfg must be a model YAML (.yaml or .yml), got '{path}'")
    import yaml

    try:
        return yaml_model_load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"model YAML '{path}' not found (not a file, nor an ultralytics model name)") from None
    except yaml.YAMLError as e:  # ultralytics 8.4 reports this as a ValueError itself, 8.3 lets it through
        raise ValueError(f"YAML syntax error in '{path}': {' '.join(str(e).split())}") from None


def _rows(d: dict) -> list:
    """All layer rows, backbone then head, as ``parse_model`` enumerates them."""
    return d["backbone"] + d["head"]


def _is_int(x: Any) -> bool:
    """Whether ``x`` is an integer and not a bool."""
    return isinstance(x, Integral) and not isinstance(x, bool)


def _check_rows(rows: list) -> None:
    """Check each row is ``[from, number, module, args]`` with ``from`` indices pointing at earlier layers."""
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ValueError(f"layer {i}: expected a [from, number, module, args] row, got {row!r}")
        f = row[0]
        for x in [f] if _is_int(f) else f if isinstance(f, list) else [None]:
            if not _is_int(x) or not (x == -1 or (x >= 0 and x < i) or (x < 0 and i + x >= 0)):
                raise ValueError(f"layer {i}: 'from' {f!r} does not point at an earlier layer")


def _check_after(after: int | Iterable[int], n_layers: int) -> set[int]:
    """Validate insertion points against ``n_layers`` rows; the last row (the model's output head) is excluded."""
    last = n_layers - 2
    valid = f"valid layer indices are 0..{last}" if last >= 0 else "the model has no layer to insert after"
    items = [after] if _is_int(after) else after
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValueError(f"after must be an int or a list of ints; {valid}, got {after!r}")
    items = list(items)
    if not items:
        raise ValueError(f"after is empty: name at least one layer index; {valid}")
    seen: set[int] = set()
    for j in items:
        if not _is_int(j):
            raise ValueError(f"after: {j!r} is not an int layer index; {valid}")
        if not 0 <= j <= last:
            raise ValueError(f"after: layer {j} is out of range; {valid} (the last layer, the head, is excluded)")
        if j in seen:
            raise ValueError(f"after: layer {j} is listed twice; {valid}")
        seen.add(int(j))
    return seen


def _index_maps(n_layers: int, points: set[int]) -> tuple[list[int], list[int]]:
    """Map each original layer to its new index, and to the new index of the output its consumers should read.

    Returns:
        (tuple[list[int], list[int]]): ``new_index[k]`` is where layer ``k`` moves to; ``out_index[k]`` is the row
            that now supplies layer ``k``'s output to later layers (the inserted row when ``k`` is an insert point).
    """
    new_index, out_index, shift = [], [], 0
    for k in range(n_layers):
        new_index.append(k + shift)
        out_index.append(k + shift + (k in points))
        shift += k in points
    return new_index, out_index


def _remap_from(f: int | list, i: int, new_index: list[int], out_index: list[int]) -> int | list:
    """Rewrite row ``i``'s ``from`` (int or list) for its new position, keeping each index's absolute/relative form."""
    if isinstance(f, list):
        return [_remap_index(x, i, new_index, out_index) for x in f]
    return _remap_index(f, i, new_index, out_index)


def _remap_index(x: int, i: int, new_index: list[int], out_index: list[int]) -> int:
    """Rewrite one ``from`` index of row ``i``; ``-1`` stays ``-1`` since the row before a consumer is its source."""
    if i == 0 or x == -1:  # row 0's -1 is the image; otherwise new_index[i] - 1 == out_index[i - 1] always
        return x
    target = out_index[x if x >= 0 else i + x]
    return target if x >= 0 else target - new_index[i]


# --------------------------------------------------------------------------------------------------------------------
# write_yaml
# --------------------------------------------------------------------------------------------------------------------


def write_yaml(
    d: dict, path: str | Path, inserted_rows: Iterable[int] = (), force: bool = False, header: str | None = None
) -> Path:
    """Write a model dict as an ultralytics model YAML, marking inserted rows with a comment.

    Rows are written one per line in flow style like the stock YAMLs. ``scale`` and ``yaml_file`` are not written:
    ``yaml_model_load`` sets both from the file name, so name the file with the scale letter (``yolov8n-ta.yaml``)
    to keep a scaled model's size; a warning says so when the name would lose it.

    Args:
        d (dict): Model dict, e.g. from :func:`insert_layers_with_rows`.
        path (str | Path): Destination ``.yaml``/``.yml`` file; parent folders are created.
        inserted_rows (Iterable[int]): Layer indices (backbone and head counted together) to mark as inserted.
        force (bool): Overwrite an existing file.
        header (str | None): Optional comment text for the top of the file (each line gets a ``#``).

    Returns:
        (Path): The written file.

    Raises:
        FileExistsError: If ``path`` exists and ``force`` is False.
        ValueError: If ``path`` is not a YAML file name or ``d`` has no backbone/head rows.
    """
    path = Path(path)
    if path.suffix.lower() not in {".yaml", ".yml"}:
        raise ValueError(f"model YAML path must end in .yaml or .yml, got '{path}'")
    if path.exists() and not force:
        raise FileExistsError(f"'{path}' already exists; pass force=True to overwrite it")
    n_rows = len(d.get("backbone") or []) + len(d.get("head") or [])
    marked = set()
    for i in inserted_rows:
        if not _is_int(i) or not 0 <= i < n_rows:
            raise ValueError(f"inserted_rows: {i!r} is not a row index; valid indices are 0..{n_rows - 1}")
        marked.add(int(i))
    text = _yaml_text(d, marked, header)
    _warn_if_scale_lost(d, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _yaml_text(d: dict, marked: set[int], header: str | None) -> str:
    """Render a model dict as YAML text with one flow-style row per line."""
    for key in ("backbone", "head"):
        if not isinstance(d.get(key), list):
            raise ValueError(f"model dict needs a '{key}' list of rows")
    lines = [f"# {line}".rstrip() for line in header.splitlines()] if header else []
    for key, value in d.items():
        if key in _LOAD_TIME_KEYS or key in ("backbone", "head"):
            continue
        if isinstance(value, dict) and value:
            lines.append(f"{key}:")
            lines.extend(f"  {_flow(k)}: {_flow(v)}" for k, v in value.items())
        else:
            lines.append(f"{key}: {_flow(value)}")
    offset = 0
    for key in ("backbone", "head"):
        lines.append(f"\n{key}:")
        for i, row in enumerate(d[key], offset):
            note = f"  {INSERTED_COMMENT}" if i in marked else f"  # {i}"
            lines.append(f"  - {_flow(list(row))}{note}")
        offset += len(d[key])
    return "\n".join(lines) + "\n"


def _flow(v: Any) -> str:
    """Render a value as a YAML flow scalar/sequence/mapping that loads back to the same value."""
    import yaml

    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_flow(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return (".inf" if v > 0 else "-.inf") if math.isinf(v) else ".nan" if math.isnan(v) else repr(v)
    if isinstance(v, Integral):
        return str(int(v))
    s = str(v)
    if re.fullmatch(r"[A-Za-z_][\w.\-]*", s) and yaml.safe_load(s) == s:
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted scalar


def _warn_if_scale_lost(d: dict, path: Path) -> None:
    """Warn when loading ``path`` would not restore the dict's scale (ultralytics takes it from the file name)."""
    from ultralytics.nn.tasks import guess_model_scale

    scale = d.get("scale")
    if d.get("scales") and scale and guess_model_scale(path) != scale:
        warnings.warn(
            f"'{path.name}' does not name scale '{scale}'; ultralytics reads the scale from the file name, "
            f"so use a name like 'yolo…{scale}-….yaml' to keep it",
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------------------------
# transfer_weights
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class TransferReport:
    """What :func:`transfer_weights` copied.

    Attributes:
        transferred (int): Target tensors (parameters and buffers) that received a source tensor.
        skipped (int): Source tensors that went nowhere (unaligned layer, or no key/shape match in its layer).
        missing (int): Target tensors that received nothing and keep their initial values.
        empty_layers (list[int]): Target layer indices that hold tensors but received none (e.g. inserted layers).
        layer_pairs (list[tuple[int, int]]): Aligned (source, target) layer positions in the two layer lists.
    """

    transferred: int = 0
    skipped: int = 0
    missing: int = 0
    empty_layers: list[int] = field(default_factory=list)
    layer_pairs: list[tuple[int, int]] = field(default_factory=list)

    def __str__(self) -> str:
        """Return a short human-readable summary."""
        total = self.transferred + self.missing
        empty = ", ".join(map(str, self.empty_layers)) or "none"
        return (
            f"Transferred {self.transferred}/{total} target tensors from {len(self.layer_pairs)} aligned layers; "
            f"{self.missing} target tensors kept their initial values, {self.skipped} source tensors unused; "
            f"target layers without transferred weights: {empty}"
        )


def transfer_weights(model: nn.Module, source: str | Path | nn.Module) -> TransferReport:
    """Copy every parameter and buffer of ``source`` into ``model`` by aligning their layer lists.

    The two layer lists are aligned in order (a longest-common-subsequence over layer types, preferring pairs whose
    tensors fit), so layers that only the target has, such as inserted attention rows, are skipped and each original
    layer meets its own weights although its ``model.N.`` prefix moved. Within an aligned pair, tensors whose key
    (relative to the layer) and shape match are copied and cast to the target's dtype and device.

    Args:
        model (nn.Module): Target: an ultralytics model (``DetectionModel`` etc.) or any module whose ``.model`` is
            the ``nn.Sequential`` of layers.
        source (str | Path | nn.Module): An ultralytics checkpoint (its ``ema``, else ``model``, entry; float16 is
            upcast), an ultralytics model, or its layer ``nn.Sequential``. Checkpoints are unpickled with
            ``weights_only=False`` as ultralytics does, so only load files you trust.

    Returns:
        (TransferReport): Counts of transferred, skipped and missing tensors and the target layers left empty.

    Raises:
        FileNotFoundError: If ``source`` is a path that does not exist.
        ValueError: If ``source`` is not a readable checkpoint, either side has no layer list, or no tensor fits;
            the target is left untouched in that case.
    """
    target_layers = _layer_list(model, "model")
    source_layers = _layer_list(_load_source(source) if isinstance(source, (str, Path)) else source, "source")
    src = [_layer_state(m) for m in source_layers]
    tgt = [_layer_state(m) for m in target_layers]
    pairs = _align([_layer_type(m) for m in source_layers], [_layer_type(m) for m in target_layers], src, tgt)

    plan = [(tgt[t][k], src[s][k]) for s, t in pairs for k in _fitting_keys(src[s], tgt[t])]
    if not plan:
        raise ValueError("no source tensor fits the target model: the two share no layer of the same type and shape")
    with torch.no_grad():
        for t_tensor, s_tensor in plan:
            t_tensor.copy_(s_tensor.to(device=t_tensor.device, dtype=t_tensor.dtype))
    return _report(pairs, src, tgt, target_layers)


def _layer_list(obj: Any, what: str) -> nn.Sequential:
    """Find the ``nn.Sequential`` of layers in an ultralytics model (or wrapper), or accept one directly."""
    for _ in range(4):  # Sequential, DetectionModel.model, YOLO.model.model, ...
        if isinstance(obj, nn.Sequential):
            return obj
        obj = getattr(obj, "model", None)
    raise ValueError(f"{what} has no layer list: expected an ultralytics model or its .model nn.Sequential")


def _load_source(path: str | Path) -> Any:
    """Unpickle an ultralytics checkpoint and return its ``ema`` (else ``model``) module."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' not found (or not a file)")
    try:
        from ultralytics.nn.tasks import temporary_modules

        legacy = temporary_modules(
            modules={"ultralytics.yolo.utils": "ultralytics.utils", "ultralytics.yolo.v8": "ultralytics.models.yolo"},
            attributes={"ultralytics.nn.modules.block.Silence": "torch.nn.Identity"},
        )
    except ImportError:  # older/newer ultralytics without the helper: plain load
        legacy = contextlib.nullcontext()
    try:
        with legacy:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"'{path}' is not a readable checkpoint (empty, truncated or corrupt): {reason}") from None
    except (ImportError, AttributeError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise ValueError(f"'{path}' needs code that is not importable here: {reason}") from None
    if isinstance(ckpt, nn.Module):
        return ckpt
    model = None
    if isinstance(ckpt, dict):
        model = ckpt.get("ema") if ckpt.get("ema") is not None else ckpt.get("model")
    if not isinstance(model, nn.Module):
        raise ValueError(f"'{path}' is not an ultralytics checkpoint: no 'ema' or 'model' module in it")
    return model


def _layer_type(m: nn.Module) -> str:
    """Layer type name without its module path (``Conv`` for ``ultralytics.nn.modules.conv.Conv``)."""
    t = getattr(m, "type", None) or type(m).__name__
    return str(t).rsplit(".", 1)[-1]


def _layer_state(m: nn.Module) -> dict[str, torch.Tensor]:
    """A layer's persistent parameters and buffers by relative key (the live tensors, for in-place copies)."""
    return dict(m.state_dict(keep_vars=True))


def _fitting_keys(src: dict[str, torch.Tensor], tgt: dict[str, torch.Tensor]) -> list[str]:
    """Keys present in both layer states with equal shapes."""
    return [k for k, v in tgt.items() if k in src and src[k].shape == v.shape]


def _align(src_types: list[str], tgt_types: list[str], src: list[dict], tgt: list[dict]) -> list[tuple[int, int]]:
    """Order-preserving alignment of source and target layers maximizing matched layers plus fitting tensors.

    A pair may be taken only when the types are equal and then scores 1 plus the number of its tensors that fit
    (same key and shape); the alignment with the highest total wins, so equal-typed layers whose tensors fit are
    preferred over ones that merely share a type. Classic dynamic programming, O(len(src) * len(tgt)).
    """
    n, m = len(src_types), len(tgt_types)
    gain = [
        [1 + len(_fitting_keys(src[i], tgt[j])) if src_types[i] == tgt_types[j] else 0 for j in range(m)]
        for i in range(n)
    ]
    score = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            take = gain[i][j] + score[i + 1][j + 1] if gain[i][j] else 0
            score[i][j] = max(take, score[i + 1][j], score[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if gain[i][j] and score[i][j] == gain[i][j] + score[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif score[i][j] == score[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _report(
    pairs: list[tuple[int, int]], src: list[dict], tgt: list[dict], target_layers: nn.Sequential
) -> TransferReport:
    """Count what an alignment transferred."""
    received = [0] * len(tgt)
    for s, t in pairs:
        received[t] = len(_fitting_keys(src[s], tgt[t]))
    transferred = sum(received)
    empty = [int(getattr(target_layers[t], "i", t)) for t in range(len(tgt)) if tgt[t] and not received[t]]
    return TransferReport(
        transferred=transferred,
        skipped=sum(map(len, src)) - transferred,
        missing=sum(map(len, tgt)) - transferred,
        empty_layers=empty,
        layer_pairs=list(pairs),
    )
