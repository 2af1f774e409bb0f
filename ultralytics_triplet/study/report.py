"""A study's report: one summary per variant (means, paired intervals, verdict, costs), the table and the CSV."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _compat
from .._files import atomic_write
from .._text import duration, table
from ._fields import Fields
from .plan import Plan
from .run import RunRecord
from .stats import Interval, paired_interval, verdict

__all__ = ("Summary", "format_table", "run_rows", "summarize", "write_csv")


@dataclass
class Summary(Fields):
    """One variant's line of the table.

    Attributes:
        config (str): The variant's config file name.
        placement (str): Its placement (``none`` for the plain model).
        seeds (int): Runs of it that are recorded.
        metrics (tuple[str, str]): The labels of the two metrics; the first is the verdict's.
        m1, m2 (list[float]): Each metric per seed, in seed order.
        m1_mean, m1_std, m2_mean, m2_std (float): Their means and standard deviations over seeds.
        d1, d2 (Interval | None): Paired differences to the plain model at the same seeds (None for the plain model).
        verdict (str): The plain-words reading of ``d1`` (``baseline`` for the plain model).
        train_time_s (float): Mean epoch-loop time per run.
        weights (str): The first seed's weights, relative to the study folder (what the costs are measured on).
        parameters (int), gflops (float), latency_ms (float), latency_device (str): Costs, once measured.
    """

    config: str
    placement: str
    seeds: int
    metrics: tuple[str, str]
    m1: list[float]
    m1_mean: float
    m1_std: float
    d1: Interval | None
    m2: list[float]
    m2_mean: float
    m2_std: float
    d2: Interval | None
    verdict: str
    train_time_s: float
    weights: str
    parameters: int = 0
    gflops: float = math.nan
    latency_ms: float = math.nan
    latency_device: str = "CPU"


def run_rows(plan: Plan, records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One dict per run, the columns of ``study.csv`` (metric columns named by their labels)."""
    (label1, key1), (label2, key2) = _compat.metric_labels(plan.task)
    return [{
        "config": r.config, "placement": r.placement or "none", "seed": r.seed,
        label1: r.metrics.get(key1, math.nan), label2: r.metrics.get(key2, math.nan),
        "fitness": r.metrics.get("fitness", math.nan), "epochs": r.epochs_done, "train_time_s": r.train_time_s,
        "wall_s": r.wall_s, "status": r.status, "data_order": r.data_order, "run_dir": r.run_dir,
        "weights": r.weights, "host": r.host, "ultralytics": r.ultralytics,
    } for r in records]


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def summarize(plan: Plan, runs: list[dict[str, Any]]) -> list[Summary]:
    """One summary per variant, the plain model first, from the per-run rows."""
    labels = tuple(label for label, _ in _compat.metric_labels(plan.task))
    by_config = {v.name: [r for r in runs if r["config"] == v.name] for v in plan.variants}
    plain = by_config[plan.plain.name]
    rows = []
    for name, rs in by_config.items():
        m1, m2 = ([r[label] for r in rs] for label in labels)
        d1, d2 = (None, None) if rs is plain else (paired_interval([r[label] for r in plain], m)
                                                   for label, m in zip(labels, (m1, m2)))
        rows.append(Summary(
            config=name, placement=rs[0]["placement"], seeds=len(rs), metrics=labels,
            m1=m1, m1_mean=statistics.fmean(m1), m1_std=_std(m1), d1=d1,
            m2=m2, m2_mean=statistics.fmean(m2), m2_std=_std(m2), d2=d2,
            verdict="baseline" if rs is plain else verdict(d1, labels[0]),
            train_time_s=statistics.fmean(r["train_time_s"] or 0.0 for r in rs), weights=rs[0]["weights"],
        ))
    return rows


def add_costs(rows: list[Summary], out: Path, imgsz: int, runs: int, device: Any) -> None:
    """Parameters, GFLOPs and batch-1 latency of each variant's trained model (first seed), timed interleaved."""
    import torch

    from ..loading import load_model
    from ..measure import model_stats, time_forward

    models = []
    for row in rows:
        model = load_model(out / row.weights)
        stats = model_stats(model, imgsz)
        row.parameters, row.gflops = stats["parameters"], stats["gflops"]
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
        row.latency_ms, row.latency_device = statistics.median(t), "GPU" if on_gpu else "CPU"


def _interval_text(d: Interval | None) -> str:
    """``+0.0123 [-0.0040, +0.0286]`` (or ``-`` for the baseline)."""
    if d is None:
        return "-"
    if math.isnan(d.lo):
        return f"{d.mean:+.4f}"
    return f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]"


def _data_order_note(runs: list[dict[str, Any]]) -> str:
    """A header line when some runs were shuffled the same way at every seed (ultralytics 8.3 with DDP), else ``""``."""
    fixed = [r for r in runs if r.get("data_order") == "fixed"]
    if not fixed:
        return ""
    releases = ", ".join(sorted({r["ultralytics"] for r in fixed}))
    return (f"\nData order: {len(fixed)} of {len(runs)} runs were shuffled the same way at every seed (ultralytics "
            f"{releases}: its loader ignores the seed, and the study cannot reseed it in the processes DDP starts): "
            "their seeds differ in initialisation and augmentation only, so the intervals can come out narrower than "
            "the run-to-run noise.")


def format_table(rows: list[Summary], plan: Plan, device: Any = None, runs: list[dict[str, Any]] = ()) -> str:
    """The study's table: one row per variant, with the budget (and any data-order caveat of ``runs``) on top and
    how to read it below."""
    s = plan.settings
    label1, label2 = rows[0].metrics
    lat = rows[0].latency_device
    header = ("config", label1, label2, f"Δ{label1} [95% CI]", f"Δ{label2} [95% CI]", "params", f"GFLOPs@{s['imgsz']}",
              f"{lat} ms", "train time", "verdict")
    body = [header]
    for r in rows:
        body.append((
            r.config, f"{r.m1_mean:.4f} ± {r.m1_std:.4f}", f"{r.m2_mean:.4f} ± {r.m2_std:.4f}",
            _interval_text(r.d1), _interval_text(r.d2), f"{r.parameters:,}", f"{r.gflops:.4g}",
            f"{r.latency_ms:.1f}", duration(r.train_time_s), r.verdict,
        ))
    data = Path(s["data"])
    budget = (f"Study: {Path(s['model']).name} on {data.parent.name}/{data.name}, seeds 0-{plan.seeds - 1}, "
              f"{s['epochs']} epoch{'s' * (s['epochs'] > 1)}, imgsz {s['imgsz']}, batch {s['batch']}, "
              f"{'from ' + Path(s['pretrained']).name if s['pretrained'] else 'from scratch'}"
              f"{', device ' + str(device) if device is not None else ''}")
    return (
        f"{budget}{_data_order_note(list(runs))}\n{table(body)}\n"
        f"mean ± std over seeds. Δ: variant − {rows[0].config} at the same seed, mean and 95% t-interval of the "
        f"paired differences; the verdict reads Δ{label1}.\n"
        f"{lat} ms: batch-1 latency at imgsz {s['imgsz']}, median of fused models timed interleaved. train time: "
        f"ultralytics' epoch-loop time, mean per run (the run's wall time where ultralytics writes no time column)."
    )


def write_csv(path: Path, runs: list[dict[str, Any]]) -> None:
    """Write the per-run rows as ``study.csv``, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(runs[0]))
            w.writeheader()
            for r in runs:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    atomic_write(path, write)
