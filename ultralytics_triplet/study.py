"""Does Triplet Attention help on my data, and where? A seeded, paired, resumable study of placements vs the plain model.

The plain model and each placement (``STEM-PLACEMENT.yaml``: ``yolo11n.yaml`` -> ``yolo11n-triplet-neck.yaml``) are
trained through the normal ultralytics trainer with the same seeds, data, budget and hyper-parameters, locally or as
Ray tasks. Each variant's result is the paired difference to the plain model at the same seed, with a 95% t-interval,
and a plain-words verdict.

Output directory (``out``):
    study.json         the study's settings and their fingerprint (a changed setting is a different study)
    records/RUN.json   one file per finished run, written atomically (what makes the study resumable)
    runs/RUN/          the ultralytics training runs (RUN is ``<config stem>-seed<k>``)
    study.txt          the table; study.csv one row per run; study.png each seed as a dot, mean and std per variant

Examples:
    >>> from ultralytics_triplet.study import study
    >>> result = study("data.yaml", model="yolov5n.yaml", placements=["triplet", "triplet-neck"], seeds=3, epochs=50)
    >>> print(result.table)
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ._files import atomic_write
from ._text import PREFIX, one_line, table

__all__ = (
    "KNOWN_PLACEMENTS",
    "StudyResult",
    "paired_interval",
    "run_study",
    "run_training",
    "study",
    "t_quantile",
)

KNOWN_PLACEMENTS = ("triplet", "triplet-neck", "triplet-dense")
RAY_HINT = "--backend ray needs Ray, an optional extra: pip install 'ultralytics-triplet[ray]'"
STUDY_FILE = "study.json"
OUTPUTS = ("study.txt", "study.csv", "study.png")
_FORMAT = 1  # version of study.json / records layout
_SKIP_IN_LISTING = (".cache", ".npy")  # files ultralytics itself writes next to a dataset (label caches, cache=disk)
_RESERVED = {  # set by the study itself for every run, identically
    "data", "model", "epochs", "imgsz", "batch", "seed", "deterministic", "device", "project", "name", "exist_ok",
    "pretrained", "resume", "val", "mode", "task",
}
_SETTING_NAMES = {  # how a changed setting is named in the 'different study' message
    "data_sha256": "data", "data_files": "data", "nc": "data", "model_sha256": "model", "task": "model",
    "pretrained_sha256": "pretrained", "train_args": "hyper-parameters", "format": "study format",
}
_NOT_FINGERPRINTED = {"workers", "verbose", "plots", "cache", "save_period"}  # how a run executes, not what it learns
# (label, results key) of the two metrics reported, by task; the first is the one the verdict uses
_METRICS = {
    "detect": (("mAP50-95", "metrics/mAP50-95(B)"), ("mAP50", "metrics/mAP50(B)")),
    "obb": (("mAP50-95", "metrics/mAP50-95(B)"), ("mAP50", "metrics/mAP50(B)")),
    "segment": (("mask mAP50-95", "metrics/mAP50-95(M)"), ("mask mAP50", "metrics/mAP50(M)")),
    "pose": (("pose mAP50-95", "metrics/mAP50-95(P)"), ("pose mAP50", "metrics/mAP50(P)")),
    "classify": (("top-1 acc", "metrics/accuracy_top1"), ("top-5 acc", "metrics/accuracy_top5")),
}


# --------------------------------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz method)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t distribution (``scipy.stats.t.ppf(p, df)``), computed with the standard library.

    Args:
        p (float): Probability in (0, 1), e.g. 0.975 for a two-sided 95% interval.
        df (int): Degrees of freedom (>= 1).

    Returns:
        (float): t such that P(T <= t) = p.
    """
    if not 0.0 < p < 1.0 or df < 1:
        raise ValueError(f"need 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p == 0.5:
        return 0.0
    tail = 2.0 * min(p, 1.0 - p)  # two-sided tail mass: P(|T| > t) = I_{df/(df+t^2)}(df/2, 1/2)

    def two_sided(t: float) -> float:
        return _betainc(df / 2.0, 0.5, df / (df + t * t))

    lo, hi = 0.0, 1.0
    while two_sided(hi) > tail:
        hi *= 2.0
    for _ in range(200):  # bisection: two_sided decreases in t
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if two_sided(mid) > tail else (lo, mid)
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    t = (lo + hi) / 2.0
    return t if p > 0.5 else -t


def paired_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean of the paired differences ``b - a`` with a two-sided t-interval.

    Args:
        a (Sequence[float]): Values of the reference (the plain model), one per seed.
        b (Sequence[float]): Values of the variant at the same seeds, in the same order.
        level (float): Confidence level of the interval.

    Returns:
        (dict): ``n`` pairs, ``mean`` difference, ``sd`` of the differences, ``lo`` and ``hi`` interval bounds
            (NaN with fewer than 2 pairs).
    """
    if len(a) != len(b):
        raise ValueError(f"paired samples must have equal lengths, got {len(a)} and {len(b)}")
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    if n == 0:
        return {"n": 0, "mean": math.nan, "sd": math.nan, "lo": math.nan, "hi": math.nan}
    mean = statistics.fmean(d)
    if n < 2:
        return {"n": n, "mean": mean, "sd": math.nan, "lo": math.nan, "hi": math.nan}
    sd = statistics.stdev(d)
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "sd": sd, "lo": mean - half, "hi": mean + half}


def verdict(interval: dict[str, float], metric: str) -> str:
    """Plain-words reading of a paired interval: higher, lower, or no difference detectable at this many seeds."""
    n = interval["n"]
    if n < 2 or math.isnan(interval["lo"]):
        return f"only {n} paired seed{'s' * (n != 1)}: no interval"
    if interval["lo"] > 0:
        return f"higher {metric} (95% CI above 0, {n} seeds)"
    if interval["hi"] < 0:
        return f"lower {metric} (95% CI below 0, {n} seeds)"
    return f"no difference detectable at {n} seeds"


# --------------------------------------------------------------------------------------------------------------------
# planning: variants, settings, fingerprint
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class StudyResult:
    """What :func:`study` did and found.

    Attributes:
        out (Path): The study directory.
        rows (list[dict]): One per variant (plain first), as in ``study.txt``.
        runs (list[dict]): One per (variant, seed) run, as in ``study.csv``.
        table (str): The printed table (also ``study.txt``).
        trained (int): Runs trained from scratch by this call.
        resumed (int): Interrupted runs this call continued.
        reused (int): Finished runs this call found recorded and did not train again.
        files (dict[str, Path]): ``txt``, ``csv`` and ``png`` outputs.
    """

    out: Path
    rows: list[dict]
    runs: list[dict]
    table: str
    trained: int = 0
    resumed: int = 0
    reused: int = 0
    files: dict[str, Path] = field(default_factory=dict)


def _sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(obj: Any) -> str:
    """Short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def variant_configs(model: str | Path, placements: Sequence[str]) -> list[str]:
    """The plain config and one ``STEM-PLACEMENT`` config per placement, in the same folder (or bare, like ``model``).

    Raises:
        ValueError: If a placement is not one of :data:`KNOWN_PLACEMENTS`, or is listed twice.
    """
    unknown = [p for p in placements if p not in KNOWN_PLACEMENTS]
    if unknown:
        raise ValueError(f"unknown placement{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                         f"known placements: {', '.join(KNOWN_PLACEMENTS)}")
    if len(set(placements)) != len(placements):
        raise ValueError(f"placements are listed twice: {' '.join(placements)}")
    model = str(model)
    path = Path(model)
    suffix = path.suffix or ".yaml"
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if any(stem.endswith(f"-{p}") for p in KNOWN_PLACEMENTS):
        raise ValueError(f"--model must be the plain model, not a placement of it: '{model}'")
    names = [f"{stem}{suffix}", *(f"{stem}-{p}{suffix}" for p in placements)]
    return names if path.name == model else [str(path.with_name(n)) for n in names]


def _resolve_configs(configs: list[str], placements: Sequence[str]) -> list[dict]:
    """Load every config as ultralytics would, before anything trains; return the model dicts.

    Raises:
        FileNotFoundError: If the plain model or a placement's config does not resolve.
    """
    from .loading import load_model_yaml

    dicts = []
    for i, cfg in enumerate(configs):
        try:
            dicts.append(load_model_yaml(cfg))
        except FileNotFoundError:
            if i == 0:
                raise
            raise FileNotFoundError(
                f"placement '{placements[i - 1]}' has no config for {Path(configs[0]).name}: '{cfg}' does not "
                f"resolve (neither a file nor a name ultralytics or a plugin knows)"
            ) from None
    return dicts


def _data_roots(info: dict) -> list[Path]:
    """Directories (and split list files) whose listing identifies a dataset: its root, and splits outside it."""
    root = Path(info.get("path") or ".")
    roots = [root] if root.exists() else []
    for k in ("train", "val", "test", "minival"):
        splits = info.get(k)
        for s in splits if isinstance(splits, (list, tuple)) else [splits] if splits else []:
            p = Path(str(s))
            if not p.exists() or any(p.resolve().is_relative_to(r.resolve()) for r in roots):
                continue
            roots.append(p)
            parts = p.parts
            if p.is_dir() and "images" in parts:  # the labels of an images/ folder live in the matching labels/
                i = len(parts) - 1 - parts[::-1].index("images")
                labels = Path(*parts[:i], "labels", *parts[i + 1:])
                if labels.exists():
                    roots.append(labels)
    return roots


def _listing(roots: list[Path], out: Path) -> tuple[str, int]:
    """Hash of every file's relative path and size under ``roots`` (skipping caches and the study's own folder)."""
    h, n = hashlib.sha256(), 0
    out = out.resolve()
    for r in roots:
        h.update(f"# {r.resolve()}\n".encode())
        files = [r] if r.is_file() else sorted(p for p in r.rglob("*") if p.is_file())
        for p in files:
            if p.suffix in _SKIP_IN_LISTING or p.resolve().is_relative_to(out):
                continue
            h.update(f"{p.relative_to(r) if p != r else p.name}\t{p.stat().st_size}\n".encode())
            n += 1
    return h.hexdigest(), n


def _check_data(data: str | Path, task: str, out: Path) -> dict[str, Any]:
    """Check the dataset with ultralytics' own checker; return its fingerprint (YAML content, files and sizes).

    Raises:
        FileNotFoundError: If the data YAML (or classification folder) does not exist.
        ValueError: If ultralytics rejects it.
    """
    path = Path(data)
    if not path.exists():
        raise FileNotFoundError(f"data '{data}' not found")
    if task == "classify" and path.is_dir():
        from ultralytics.data.utils import check_cls_dataset as check
    elif path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        from ultralytics.data.utils import check_det_dataset as check
    else:
        raise ValueError(f"data '{data}' must be a dataset YAML file" + (" or folder" if task == "classify" else ""))
    try:
        info = check(str(path))
    except Exception as e:
        raise ValueError(f"ultralytics rejects data '{data}': {one_line(e)}") from None
    if path.is_file():
        info = {**info, "path": info.get("path") or path.parent}
    digest, n = _listing(_data_roots(info) if path.is_file() else [path], out)
    content = path.read_bytes() if path.is_file() else b""
    return {
        "data": str(path.resolve()),
        "data_sha256": hashlib.sha256(content + digest.encode()).hexdigest(),
        "data_files": n,
        "nc": int(info.get("nc") or len(info.get("names") or [])),
    }


def _check_number(what: str, v: Any, low: int) -> None:
    """Raise a ValueError unless ``v`` is an integer >= ``low``."""
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{what} must be an integer >= {low}, got {v!r}")


def _plan(
    data, model, placements, seeds, epochs, imgsz, batch, pretrained, backend, out, train_args
) -> dict[str, Any]:
    """Validate everything a study needs, in order of cost; return the plan (settings, fingerprint, variants)."""
    from ultralytics.nn.tasks import guess_model_task

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise ValueError(f"seeds must be an integer >= 2 (a paired interval needs at least 2 seeds), got {seeds!r}")
    _check_number("epochs", epochs, 1)
    _check_number("imgsz", imgsz, 32)
    if isinstance(batch, bool) or not isinstance(batch, (int, float)) or batch == 0 or batch < -1:
        raise ValueError(f"batch must be a positive integer (or -1 for ultralytics' auto batch), got {batch!r}")
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    clash = sorted(set(train_args) & _RESERVED)
    if clash:
        raise ValueError(f"train argument{'s' * (len(clash) > 1)} {', '.join(clash)} are set by the study itself")
    placements = list(placements)
    if not placements:
        raise ValueError(f"no placements given; known placements: {', '.join(KNOWN_PLACEMENTS)}")
    if not Path(data).exists():  # cheap checks first: nothing below should run for a typo
        raise FileNotFoundError(f"data '{data}' not found")
    configs = variant_configs(model, placements)
    if pretrained and (Path(pretrained).suffix.lower() != ".pt" or not Path(pretrained).is_file()):
        raise FileNotFoundError(f"pretrained weights '{pretrained}' not found (a local .pt file is needed)")
    out = Path(out)
    _check_out_is_free(out)
    if backend == "ray":
        _import_ray()
    dicts = _resolve_configs(configs, placements)
    task = guess_model_task(dicts[0])
    settings = {
        "format": _FORMAT,
        "model": str(model),
        "model_sha256": _digest(_model_identity(dicts[0])),
        "task": task,
        **_check_data(data, task, out),
        "epochs": epochs,
        "imgsz": imgsz,
        "batch": batch,
        "pretrained": str(Path(pretrained).resolve()) if pretrained else None,
        "pretrained_sha256": _sha256_file(Path(pretrained)) if pretrained else None,
        "train_args": {k: train_args[k] for k in sorted(train_args) if k not in _NOT_FINGERPRINTED},
    }
    return {
        "settings": settings,
        "fingerprint": _digest(settings),
        "configs": configs,
        "placements": [None, *placements],
        "config_sha256": [_digest(_model_identity(d)) for d in dicts],
        "task": task,
    }


def _model_identity(d: dict) -> dict:
    """The parts of a model dict that define the network (not where the file was found)."""
    return {k: v for k, v in d.items() if k not in ("yaml_file",)}


def _check_out_is_free(out: Path) -> None:
    """Refuse an output path that is a file, or a non-empty folder that is not a study."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out '{out}' is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / STUDY_FILE).is_file():
        raise FileExistsError(f"'{out}' is not empty and holds no study ({STUDY_FILE}); choose a new --out directory")


def _open_study(out: Path, plan: dict) -> None:
    """Write ``study.json`` for a new study, or check that ``out`` holds this same study.

    Raises:
        FileExistsError: If ``out`` holds a study with different settings (nothing is changed then).
    """
    path = out / STUDY_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            old_settings = old["settings"]
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"'{path}' is not a readable study file: {one_line(e)}") from None
        if old.get("fingerprint") != plan["fingerprint"]:
            changed = [_SETTING_NAMES.get(k, k) for k in plan["settings"] if old_settings.get(k) != plan["settings"][k]]
            raise FileExistsError(
                f"'{out}' holds a different study (changed: {', '.join(dict.fromkeys(changed)) or 'settings'}); "
                "results of different settings are never mixed: choose a new --out directory"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps({"fingerprint": plan["fingerprint"], "settings": plan["settings"]}, indent=2))


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _import_ray():
    """Import Ray, or raise the one-line install hint."""
    try:
        import ray
    except ImportError:
        raise ImportError(RAY_HINT) from None
    return ray


# --------------------------------------------------------------------------------------------------------------------
# one run (module level and plain-dict in, plain-dict out: picklable for Ray)
# --------------------------------------------------------------------------------------------------------------------


def _read_results_csv(path: Path) -> list[dict[str, float]]:
    """Rows of an ultralytics ``results.csv`` with stripped keys and float values."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for r in csv.DictReader(f):
            try:
                rows.append({k.strip(): float(v) for k, v in r.items() if k})
            except (TypeError, ValueError):
                continue
    return rows


def _train_seconds(rows: list[dict[str, float]]) -> float:
    """Training time from ``results.csv``'s ``time`` column, summed over sessions (it restarts at 0 on resume)."""
    total, last = 0.0, 0.0
    for r in rows:
        t = r.get("time", math.nan)
        if math.isnan(t):
            continue
        if t < last:  # a resumed session
            total += last
        last = t
    return total + last


def _run_state(run_dir: Path, epochs: int) -> str:
    """``fresh``, ``resumable`` (an interrupted run's last.pt) or ``trained`` (finished, not yet recorded)."""
    from .loading import load_checkpoint

    last, best = run_dir / "weights" / "last.pt", run_dir / "weights" / "best.pt"
    if not last.is_file():
        return "fresh"
    try:
        ckpt = load_checkpoint(last)[1]
    except (ValueError, OSError):
        return "fresh"  # a checkpoint cut short by the interruption: nothing to continue from
    epoch = ckpt.get("epoch", -1)
    if ckpt.get("optimizer") is not None and 0 <= epoch < epochs - 1:
        return "resumable"
    return "trained" if best.is_file() else "fresh"


def _results_dict(metrics: Any, best: Path) -> dict[str, float]:
    """Final validation metrics: from the trainer's validator, or best.pt's ``train_metrics`` (DDP runs)."""
    rd = getattr(metrics, "results_dict", None)
    if rd is None and isinstance(metrics, dict):
        rd = metrics
    if not rd and best.is_file():
        from .loading import load_checkpoint

        rd = load_checkpoint(best)[1].get("train_metrics") or {}
    return {k: float(v) for k, v in (rd or {}).items()}


def _worker_device(spec: dict) -> Any:
    """The ``device`` argument inside this process: the GPUs Ray assigned to the task, or the study's ``device``."""
    n = spec.get("ray_gpus") or 0
    if not n:
        return spec.get("device")
    import inspect

    from ultralytics.utils import torch_utils

    # Ray restricts CUDA_VISIBLE_DEVICES to the task's GPUs. ultralytics 8.3 writes `device` into that variable
    # (so it needs the physical ids), later releases read `device` as torch indices within it.
    if 'os.environ["CUDA_VISIBLE_DEVICES"] =' in inspect.getsource(torch_utils.select_device):
        return os.environ.get("CUDA_VISIBLE_DEVICES") or ",".join(map(str, range(n)))
    return ",".join(map(str, range(n)))


def run_training(spec: dict) -> dict:
    """Train (or continue, or finish recording) one run of a study; return its record.

    The same function runs in the calling process (local backend) and in Ray worker processes, so it takes and
    returns plain dicts. An interrupted run (its ``last.pt`` holds an optimizer state) is continued with
    ultralytics' ``resume``; a run that finished without being recorded is validated again from ``best.pt``;
    anything else starts afresh in an emptied run folder.

    Args:
        spec (dict): ``cfg``, ``data``, ``seed``, ``epochs``, ``imgsz``, ``batch``, ``device``, ``project``,
            ``name``, ``pretrained``, ``train_args`` (and ``ray_gpus`` inside a Ray task).

    Returns:
        (dict): The run's record: final ``metrics``, ``epochs_done``, ``train_time_s``, ``wall_s``, ``status``
            (``trained``, ``resumed`` or ``revalidated``), ``run_dir``, ``weights``, and where it ran.
    """
    import ultralytics
    from ultralytics import YOLO

    import ultralytics_triplet
    from .patch import register

    register()  # a fresh worker: the start-up hook has armed it already; this makes it explicit
    run_dir = Path(spec["project"]) / spec["name"]
    best, last = run_dir / "weights" / "best.pt", run_dir / "weights" / "last.pt"
    device = _worker_device(spec)
    run_args = {k: v for k, v in spec["train_args"].items() if k in ("workers", "cache")}
    t0 = time.perf_counter()
    state = _run_state(run_dir, spec["epochs"])
    if state == "resumable":
        metrics = YOLO(str(last)).train(resume=True, device=device, **run_args)
        status = "resumed"
    elif state == "trained":
        metrics = YOLO(str(best)).val(
            data=spec["data"], imgsz=spec["imgsz"], batch=spec["batch"] if spec["batch"] > 0 else 16, device=device,
            plots=False, project=str(run_dir), name="revalidation", exist_ok=True,
        )
        status = "revalidated"
    else:
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an earlier attempt that left nothing to continue from (ours: under runs/)
        metrics = YOLO(spec["cfg"]).train(
            data=spec["data"], epochs=spec["epochs"], imgsz=spec["imgsz"], batch=spec["batch"], seed=spec["seed"],
            deterministic=True, device=device, project=spec["project"], name=spec["name"], exist_ok=True,
            pretrained=spec["pretrained"] or False, val=True, plots=spec["train_args"].get("plots", False),
            **{k: v for k, v in spec["train_args"].items() if k != "plots"},
        )
        status = "trained"
    wall = time.perf_counter() - t0
    rows = _read_results_csv(run_dir / "results.csv")
    return {
        "config": Path(spec["cfg"]).name,
        "seed": spec["seed"],
        "run": spec["name"],
        "status": status,
        "metrics": _results_dict(metrics, best),
        "epochs_done": len(rows),
        "train_time_s": _train_seconds(rows),
        "wall_s": wall,
        "run_dir": str(run_dir),
        "weights": str(best if best.is_file() else last),
        "host": platform.node(),
        "pid": os.getpid(),
        "package": str(Path(ultralytics_triplet.__file__).parent),
        "ultralytics": ultralytics.__version__,
    }


# --------------------------------------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------------------------------------


def _run_local(specs: list[dict], on_done: Callable[[dict, dict], None]) -> None:
    """Train the runs one after the other in this process."""
    for spec in specs:
        on_done(spec, run_training(spec))


def _ray_gpus(ray, device: Any) -> int:
    """GPUs per Ray task: as many as ``device`` lists, none for ``cpu``, else one where the cluster has GPUs."""
    text = "" if device is None else str(device).strip().lower()
    if text in ("cpu", "mps"):
        return 0
    if text and text != "cuda":
        ids = [d for d in text.replace("cuda:", "").split(",") if d.strip()]
        if ids and all(d.strip().isdigit() for d in ids):
            return len(ids)
    return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def _run_ray(specs: list[dict], on_done: Callable[[dict, dict], None], address: str | None, device: Any) -> None:
    """Run every training as a Ray task (on the cluster at ``address``, or a local instance); record as they end."""
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        forward = {k: v for k, v in os.environ.items() if k.startswith("ULTRALYTICS_TRIPLET")}
        if not address:  # a local instance: its workers run this machine's Python, so give them this environment
            forward.update({k: os.environ[k] for k in ("PYTHONPATH", "OMP_NUM_THREADS") if k in os.environ})
        ray.init(address=address or None, runtime_env={"env_vars": forward} if forward else None,
                 log_to_driver=True)
        started = True
    try:
        gpus = _ray_gpus(ray, device)
        remote = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(run_training)
        pending = {remote.remote({**spec, "ray_gpus": gpus}): spec for spec in specs}
        failures = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        on_done(spec, ray.get(ref))
                    except ray.exceptions.RayError as e:  # the task raised, or its worker died
                        cause = getattr(e, "cause", None)
                        failures.append(f"{spec['name']}: {one_line(cause if cause is not None else e)}")
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: ultralytics leaves last.pt resumable
            raise
        if failures:
            raise RuntimeError(f"{len(failures)} run{'s' * (len(failures) > 1)} failed on Ray: {failures[0]}")
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------------------------------------------------
# the study
# --------------------------------------------------------------------------------------------------------------------


def _run_name(cfg: str, seed: int) -> str:
    """Run folder and record name of one (config, seed)."""
    return f"{Path(cfg).stem}-seed{seed}"


def _duration(seconds: float) -> str:
    """``42 s``, ``3m05s`` or ``1h02m``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


def study(
    data: str | Path,
    model: str | Path = "yolo11n.yaml",
    placements: Sequence[str] = KNOWN_PLACEMENTS,
    seeds: int = 3,
    epochs: int = 50,
    imgsz: int = 640,
    batch: int = 16,
    pretrained: str | Path | None = None,
    device: str | int | None = None,
    out: str | Path = "study",
    backend: str = "local",
    address: str | None = None,
    latency_runs: int = 20,
    **train_args: Any,
) -> StudyResult:
    """Train the plain model and each Triplet Attention placement over seeds; report paired differences.

    Every variant trains through ``YOLO(cfg).train(...)`` with the same data, seeds ``0..seeds-1``, budget and
    hyper-parameters (``deterministic=True``); with ``pretrained`` every variant starts from the same weights
    (layer-aligned, inserted attention as a pass-through). Runs are ordered seed by seed, so an interrupted study
    already holds complete pairs. A finished run is recorded in ``out/records``; calling again with the same
    settings reuses those, continues an interrupted run and trains only what is missing. More seeds or placements
    extend a study; other data, model, budget or hyper-parameters are a different study (refused in the same
    ``out``).

    Args:
        data (str | Path): Dataset YAML (a local file).
        model (str | Path): Plain model YAML, e.g. ``yolo11n.yaml``; placement ``p`` is ``STEM-p.yaml`` beside it.
        placements (Sequence[str]): Any of ``triplet``, ``triplet-neck``, ``triplet-dense``.
        seeds (int): Number of seeds (>= 2): every variant trains once per seed.
        epochs (int): Epochs per run.
        imgsz (int): Training image size.
        batch (int): Batch size (-1: ultralytics' auto batch).
        pretrained (str | Path | None): Base weights (``.pt``) every variant starts from, or None for scratch.
        device (str | int | None): ultralytics' ``device`` (``0``, ``0,1`` for DDP, ``cpu``); None lets it choose.
        out (str | Path): Study directory (new, empty, or holding this same study).
        backend (str): ``local`` (one run after another here) or ``ray`` (each run a Ray task).
        address (str | None): Ray cluster address (``ray`` backend); None starts or joins a local instance.
        latency_runs (int): Timed forward passes per variant for the latency column.
        **train_args (Any): Further ultralytics train arguments for every run (e.g. ``workers=0``, ``lr0=0.01``).

    Returns:
        (StudyResult): The per-variant rows, the per-run records, the table and the written files.

    Raises:
        FileNotFoundError: If the data, the model, a placement's config or the pretrained weights do not exist.
        FileExistsError: If ``out`` holds a different study, or other files.
        ValueError: On a bad argument (unknown placement, fewer than 2 seeds, ...). Nothing is trained or written.
        ImportError: For ``backend='ray'`` without Ray installed.
    """
    from ultralytics.utils import LOGGER

    _check_number("latency_runs", latency_runs, 1)
    plan = _plan(data, model, placements, seeds, epochs, imgsz, batch, pretrained, backend, out, train_args)
    out = Path(out)
    _open_study(out, plan)
    records_dir, project = out / "records", (out / "runs").resolve()
    specs = []
    for seed in range(seeds):  # seed by seed: an interrupted study holds complete pairs
        for cfg in plan["configs"]:
            specs.append({
                "cfg": cfg, "data": plan["settings"]["data"], "seed": seed, "epochs": epochs, "imgsz": imgsz,
                "batch": batch, "device": device, "project": str(project), "name": _run_name(cfg, seed),
                "pretrained": plan["settings"]["pretrained"], "train_args": dict(train_args),
            })
    config_sha = dict(zip(plan["configs"], plan["config_sha256"]))
    records, todo = {}, []
    for spec in specs:
        rec = _read_record(records_dir / f"{spec['name']}.json")
        if rec is None:
            todo.append(spec)
            continue
        if rec.get("config_sha256") != config_sha[spec["cfg"]]:
            raise FileExistsError(
                f"'{spec['cfg']}' is not the config run {spec['name']} was trained with (its YAML changed since); "
                "results of different settings are never mixed: choose a new --out directory"
            )
        records[spec["name"]] = rec
    total, counts = len(specs), {"trained": 0, "resumed": 0, "revalidated": 0}
    t_start = time.perf_counter()
    LOGGER.info(
        f"{PREFIX} study in {out}: {len(plan['configs'])} variants x {seeds} seeds = {total} runs; "
        f"{len(records)} already done, {len(todo)} to train ({backend} backend)"
    )

    def on_done(spec: dict, rec: dict) -> None:
        """Record one finished run atomically and log the progress line."""
        rec = {**rec, "config_sha256": config_sha[spec["cfg"]], "placement": _placement(plan, spec["cfg"])}
        rec["run_dir"] = os.path.relpath(rec["run_dir"], out.resolve())
        rec["weights"] = os.path.relpath(rec["weights"], out.resolve())
        _write_text(records_dir / f"{spec['name']}.json", json.dumps(rec, indent=2))
        records[spec["name"]] = rec
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        done_here = sum(counts.values())
        left = len(todo) - done_here
        eta = (time.perf_counter() - t_start) / done_here * left
        LOGGER.info(f"{PREFIX} study: {len(records)}/{total} runs done ({spec['name']} {rec['status']}), "
                    f"ETA {_duration(eta) if left else '0 s'}")

    try:
        if todo and backend == "ray":
            _run_ray(todo, on_done, address, device)
        elif todo:
            _run_local(todo, on_done)
    except KeyboardInterrupt:
        LOGGER.warning(f"{PREFIX} study interrupted with {len(records)}/{total} runs recorded; the same call again "
                       "continues the interrupted run and trains what is missing")
        raise

    rows, runs = summarize(plan, [records[s["name"]] for s in specs], seeds)
    _add_costs(rows, out, imgsz, latency_runs, device)
    text = format_table(rows, plan, seeds=seeds, device=device)
    files = write_outputs(out, text, runs, rows, plan, seeds)
    versions = sorted({r.get("ultralytics", "?") for r in runs})
    if len(versions) > 1:
        LOGGER.warning(f"{PREFIX} these runs were trained with different ultralytics releases: {', '.join(versions)}")
    return StudyResult(out=out, rows=rows, runs=runs, table=text, trained=counts["trained"],
                       resumed=counts["resumed"] + counts["revalidated"], reused=total - sum(counts.values()),
                       files=files)


run_study = study  # the package exports this name: ``ultralytics_triplet.study`` is the module


def _placement(plan: dict, cfg: str) -> str | None:
    """The placement name of a config of the plan (None for the plain model)."""
    return plan["placements"][plan["configs"].index(cfg)]


def _read_record(path: Path) -> dict | None:
    """A finished run's record, or None when there is none (a half-written one cannot exist: writes are atomic)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------------------------------
# summary, costs, outputs
# --------------------------------------------------------------------------------------------------------------------


def summarize(plan: dict, records: list[dict], seeds: int) -> tuple[list[dict], list[dict]]:
    """Per-variant rows (means, stds, paired intervals, verdicts) and per-run rows from the runs' records."""
    (label1, key1), (label2, key2) = _METRICS.get(plan["task"], _METRICS["detect"])
    runs = []
    for rec in records:
        m = rec.get("metrics", {})
        runs.append({
            "config": rec["config"], "placement": rec.get("placement") or "none", "seed": rec["seed"],
            label1: m.get(key1, math.nan), label2: m.get(key2, math.nan), "fitness": m.get("fitness", math.nan),
            "epochs": rec.get("epochs_done"), "train_time_s": rec.get("train_time_s"), "wall_s": rec.get("wall_s"),
            "status": rec.get("status"), "run_dir": rec.get("run_dir"), "weights": rec.get("weights"),
            "host": rec.get("host"), "ultralytics": rec.get("ultralytics"),
        })
    by_config = {Path(c).name: [r for r in runs if r["config"] == Path(c).name] for c in plan["configs"]}
    plain = by_config[Path(plan["configs"][0]).name]
    rows = []
    for cfg, rs in by_config.items():
        row = {"config": cfg, "placement": rs[0]["placement"], "seeds": len(rs), "metrics": (label1, label2),
               "train_time_s": statistics.fmean(r["train_time_s"] or 0.0 for r in rs),
               "weights": rs[0]["weights"]}
        for i, label in enumerate((label1, label2), 1):
            values = [r[label] for r in rs]
            row[f"m{i}"] = values
            row[f"m{i}_mean"] = statistics.fmean(values)
            row[f"m{i}_std"] = statistics.stdev(values) if len(values) > 1 else math.nan
            row[f"d{i}"] = None if rs is plain else paired_interval([r[label] for r in plain], values)
        row["verdict"] = "baseline" if rs is plain else verdict(row["d1"], label1)
        rows.append(row)
    return rows, runs


def _add_costs(rows: list[dict], out: Path, imgsz: int, runs: int, device: Any) -> None:
    """Parameters, GFLOPs and batch-1 latency of each variant's trained model (first seed), timed interleaved."""
    import torch

    from .compare import model_stats, time_forward
    from .loading import load_model

    models = []
    for row in rows:
        model = load_model(out / row["weights"])
        stats = model_stats(model, imgsz)
        row.update(parameters=stats["parameters"], gflops=stats["gflops"])
        models.append(model.fuse(verbose=False) if hasattr(model, "fuse") else model)
    on_gpu = torch.cuda.is_available() and str(device if device is not None else "").lower() not in ("cpu", "mps")
    dev = torch.device("cuda:0" if on_gpu else "cpu")
    previous = torch.get_num_threads()
    if not on_gpu:
        torch.set_num_threads(1)  # as `compare`: one thread, so a busy machine disturbs all variants alike
    try:
        times = time_forward([m.to(dev) for m in models], imgsz, runs, device=dev)
    finally:
        torch.set_num_threads(previous)
    for row, t in zip(rows, times):
        row.update(latency_ms=statistics.median(t), latency_device="GPU" if on_gpu else "CPU")


def _interval_text(d: dict | None) -> str:
    """``+0.0123 [-0.0040, +0.0286]`` (or ``-`` for the baseline)."""
    if d is None:
        return "-"
    if math.isnan(d["lo"]):
        return f"{d['mean']:+.4f}"
    return f"{d['mean']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}]"


def format_table(rows: list[dict], plan: dict, seeds: int, device: Any = None) -> str:
    """The study's table: one row per variant, with the budget on top and how to read it below."""
    s = plan["settings"]
    label1, label2 = rows[0]["metrics"]
    lat = rows[0].get("latency_device", "CPU")
    header = ("config", label1, label2, f"Δ{label1} [95% CI]", f"Δ{label2} [95% CI]", "params", f"GFLOPs@{s['imgsz']}",
              f"{lat} ms", "train time", "verdict")
    body = [header]
    for r in rows:
        body.append((
            r["config"], f"{r['m1_mean']:.4f} ± {r['m1_std']:.4f}", f"{r['m2_mean']:.4f} ± {r['m2_std']:.4f}",
            _interval_text(r["d1"]), _interval_text(r["d2"]), f"{r['parameters']:,}", f"{r['gflops']:.4g}",
            f"{r['latency_ms']:.1f}", _duration(r["train_time_s"]), r["verdict"],
        ))
    data = Path(s["data"])
    budget = (f"Study: {Path(s['model']).name} on {data.parent.name}/{data.name}, seeds 0-{seeds - 1}, {s['epochs']} "
              f"epoch{'s' * (s['epochs'] > 1)}, imgsz {s['imgsz']}, batch {s['batch']}, "
              f"{'from ' + Path(s['pretrained']).name if s['pretrained'] else 'from scratch'}"
              f"{', device ' + str(device) if device is not None else ''}")
    return (
        f"{budget}\n{table(body)}\n"
        f"mean ± std over seeds. Δ: variant − {rows[0]['config']} at the same seed, mean and 95% t-interval of the "
        f"paired differences; the verdict reads Δ{label1}.\n"
        f"{lat} ms: batch-1 latency at imgsz {s['imgsz']}, median of fused models timed interleaved. train time: "
        f"ultralytics' epoch-loop time, mean per run."
    )


def write_outputs(out: Path, text: str, runs: list[dict], rows: list[dict], plan: dict, seeds: int) -> dict:
    """Write ``study.txt``, ``study.csv`` and ``study.png`` atomically; return their paths."""
    files = {"txt": out / "study.txt", "csv": out / "study.csv", "png": out / "study.png"}
    _write_text(files["txt"], text + "\n")
    columns = list(runs[0])

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in runs:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    atomic_write(files["csv"], write_csv)
    atomic_write(files["png"], lambda tmp: plot_study(rows, tmp, plan, seeds))
    return files


def plot_study(rows: list[dict], path: Path, plan: dict, seeds: int) -> None:
    """Each seed's value as a dot, the mean with a ±std error bar, per variant and per metric (a PNG)."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend and figures stay as they are

    s = plan["settings"]
    names = [r["config"] for r in rows]
    fig = Figure(figsize=(max(6.0, 1.9 * len(rows)) * 2 / 1.6, 4.2))
    axes = fig.subplots(1, 2)
    for ax, i in zip(axes, (1, 2)):
        label = rows[0]["metrics"][i - 1]
        for x, r in enumerate(rows):
            values = r[f"m{i}"]
            offsets = [(k - (len(values) - 1) / 2) * 0.06 for k in range(len(values))]
            ax.scatter([x - 0.12 + o for o in offsets], values, s=22, color="#4C72B0", alpha=0.8, zorder=3,
                       label="one seed" if x == 0 else None)
            ax.errorbar([x + 0.12], [r[f"m{i}_mean"]], yerr=[0 if math.isnan(r[f"m{i}_std"]) else r[f"m{i}_std"]],
                        fmt="o", color="#C44E52", capsize=5, zorder=4, label="mean ± std" if x == 0 else None)
        ax.axhline(rows[0][f"m{i}_mean"], color="0.6", linestyle="--", linewidth=1, zorder=1)
        ax.set_xticks(range(len(rows)), names, rotation=15, ha="right", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.margins(x=0.15)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{seeds} seeds, {s['epochs']} epoch{'s' * (s['epochs'] > 1)}, imgsz {s['imgsz']} "
                 f"(dashed: {names[0]} mean)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
