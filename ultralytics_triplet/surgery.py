"""YAML index algebra: insert rows into an ultralytics model YAML, re-wire every index, write the YAML back.

:func:`insert_layers` rewrites a model dict so a new row follows each chosen layer and everything that used that
layer's output now uses the new row's output instead (``from`` indices rewired, every other index shifted);
:func:`write_yaml` saves the new dict as an ultralytics model YAML with each inserted row marked by a comment.
Carrying a plain model's weights into the result is ``weights.py``'s job.

Examples:
    >>> from ultralytics.nn.tasks import DetectionModel
    >>> d, rows = insert_layers_with_rows("yolov8n.yaml", after=[4, 6, 9])
    >>> model = DetectionModel(d, verbose=False)
    >>> write_yaml(d, "yolov8n-triplet.yaml", rows)
"""

from __future__ import annotations

import copy
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path
from typing import Any

import yaml

from ._checks import YAML_SUFFIXES, check_model_lists, check_output_file
from ._checks import is_int as _is_int
from ._compat import tasks
from ._files import atomic_write

# plugins and loading import torch and ultralytics: they are imported inside the functions that need them, so the dict
# algebra, and `ultralytics-triplet --help` (which reads the placement names), do without.

__all__ = ("INSERTED_COMMENT", "TRIPLET_CITATION", "check_after", "insert_layers", "insert_layers_with_rows",
           "load_model_dict", "model_rows", "write_config", "write_yaml")

INSERTED_COMMENT = "# inserted by ultralytics-triplet"
TRIPLET_CITATION = ('Triplet Attention: Misra et al., "Rotate to Attend: Convolutional Triplet Attention Module", '
                    "WACV 2021.")
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
    from .plugins import registry  # lazy: see the note on imports at the top

    d = load_model_dict(cfg)
    registry().check_module_name(module)
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise ValueError(f"args must be a list of the inserted module's arguments, got {args!r}")
    rows = model_rows(d)
    points = check_after(after, len(rows))
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
        from .loading import load_model_yaml  # lazy: see the note on imports at the top

        d = load_model_yaml(cfg)
    else:
        raise ValueError(f"cfg must be a model YAML name, path or dict, got {type(cfg).__name__}")
    check_model_lists(d, f"'{cfg}'" if isinstance(cfg, (str, Path)) else "the model dict")
    _check_rows(model_rows(d))
    return d


def model_rows(d: dict) -> list:
    """All layer rows of a model dict, backbone then head, as ``parse_model`` enumerates them (and numbers them)."""
    return list(d.get("backbone") or []) + list(d.get("head") or [])


def _check_rows(rows: list) -> None:
    """Check each row is ``[from, number, module, args]`` with ``from`` indices pointing at earlier layers."""
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != 4:
            raise ValueError(f"layer {i}: expected a [from, number, module, args] row, got {row!r}")
        f = row[0]
        for x in [f] if _is_int(f) else f if isinstance(f, list) else [None]:
            if not _is_int(x) or not (x == -1 or (x >= 0 and x < i) or (x < 0 and i + x >= 0)):
                raise ValueError(f"layer {i}: 'from' {f!r} does not point at an earlier layer")


def check_after(after: int | Iterable[int], n_layers: int, what: str = "after") -> set[int]:
    """Validate insertion points against ``n_layers`` rows; the last row (the model's output head) is excluded.

    Args:
        after (int | Iterable[int]): Layer indices to insert after.
        n_layers (int): Rows of the model, backbone and head counted together.
        what (str): How the error messages name ``after`` (``placements 'after:30'`` in a study).

    Returns:
        (set[int]): The indices.

    Raises:
        ValueError: If ``after`` is empty or holds a non-integer, an index out of range or one index twice; the
            message lists the valid indices.
    """
    last = n_layers - 2
    valid = f"valid layer indices are 0..{last}" if last >= 0 else "the model has no layer to insert after"
    items = [after] if _is_int(after) else after
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValueError(f"{what} must be an int or a list of ints; {valid}, got {after!r}")
    items = list(items)
    if not items:
        raise ValueError(f"{what} is empty: name at least one layer index; {valid}")
    seen: set[int] = set()
    for j in items:
        if not _is_int(j):
            raise ValueError(f"{what}: {j!r} is not an int layer index; {valid}")
        if not 0 <= j <= last:
            raise ValueError(f"{what}: layer {j} is out of range; {valid} (the last layer, the head, is excluded)")
        if j in seen:
            raise ValueError(f"{what}: layer {j} is listed twice; {valid}")
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
    path = check_output_file("path", path, YAML_SUFFIXES, force=force)
    n_rows = len(model_rows(d))
    marked = set()
    for i in inserted_rows:
        if not _is_int(i) or not 0 <= i < n_rows:
            raise ValueError(f"inserted_rows: {i!r} is not a row index; valid indices are 0..{n_rows - 1}")
        marked.add(int(i))
    text = yaml_text(d, marked, header)
    _warn_if_scale_lost(d, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_config(d: dict, path: Path, inserted_rows: Iterable[int], header: str) -> Path:
    """Write a model config this package generates: atomically, and only when the file does not hold that text yet.

    A reader (a parallel DDP worker, say) sees the old file or the new one, never a partial one, and an unchanged file
    keeps its modification time. ``header`` is the comment block on top (its first lines say what the file is and cite
    the module it inserts, e.g. :data:`TRIPLET_CITATION`).
    """
    text = yaml_text(d, set(inserted_rows), header)
    if not (path.is_file() and path.read_text(encoding="utf-8") == text):
        atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def yaml_text(d: dict, marked: set[int], header: str | None) -> str:
    """Render a model dict as YAML text with one flow-style row per line."""
    check_model_lists(d, "the model dict")
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
    scale = d.get("scale")
    if d.get("scales") and scale and tasks().guess_model_scale(path) != scale:
        warnings.warn(
            f"'{path.name}' does not name scale '{scale}'; ultralytics reads the scale from the file name, "
            f"so use a name like 'yolo…{scale}-….yaml' to keep it",
            stacklevel=3,
        )
