"""Compare two models side by side: layers, parameters, GFLOPs and CPU latency, as a table and a bar chart.

Examples:
    >>> from ultralytics_triplet.compare import compare_models, format_table, plot_comparison
    >>> rows = compare_models("yolov5n.yaml", "yolov5n-triplet.yaml", imgsz=320, runs=10)
    >>> print(format_table(rows))
    >>> plot_comparison(rows, "compare.png")
"""

from __future__ import annotations

import copy
import statistics
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._checks import check_int
from ._plot import figure
from ._text import table
from .loading import check_source, load_model
from .measure import model_stats, time_forward

__all__ = ("compare_models", "format_table", "plot_comparison")


def compare_models(
    a: str | Path | nn.Module,
    b: str | Path | nn.Module,
    imgsz: int = 640,
    runs: int = 20,
    threads: int = 1,
    warmup: int = 2,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure two models the same way; return one dict per model.

    Parameters and GFLOPs are those of the models as built (unfused, like ultralytics' summary line). Latency is the
    median over ``runs`` batch-1 forward passes on the CPU at ``imgsz`` of the fused (Conv+BN) models in eval mode,
    timed in one process with A and B interleaved so drifting load affects both alike, with
    ``torch.set_num_threads(threads)`` for the measurement (restored afterwards).

    Args:
        a (str | Path | nn.Module): First model: ``.yaml`` (bare names resolve through ultralytics), ``.pt`` or module.
        b (str | Path | nn.Module): Second model, likewise.
        imgsz (int): Square input size for GFLOPs and latency.
        runs (int): Timed forward passes per model (>= 1).
        threads (int): CPU threads for the latency measurement (>= 1).
        warmup (int): Untimed passes per model first.
        progress (bool): Show a progress bar while timing.

    Returns:
        (list[dict]): For A then B: ``name``, ``source``, ``layers``, ``rows``, ``parameters``, ``gflops``,
            ``latency_ms`` (median), ``latency_min_ms``, ``latency_max_ms``, ``runs``, ``threads``, ``imgsz``.

    Raises:
        ValueError: On bad ``imgsz``/``runs``/``threads`` or a model that cannot be loaded.
        FileNotFoundError: If a model file does not exist.
    """
    check_int("imgsz", imgsz, 32, multiple_of=32)
    check_int("runs", runs, 1)
    check_int("threads", threads, 1)
    sources = [a, b]
    for param, s in zip("ab", sources):  # cheap checks of both before building either
        check_source(s, param)
    models = [load_model(s) for s in sources]
    names = [_display_name(s) for s in sources]
    if names[0] == names[1]:
        names = [f"A: {names[0]}", f"B: {names[1]}"]
    rows = [{"name": n, "source": str(s) if not isinstance(s, nn.Module) else type(s).__name__} for n, s in
            zip(names, sources)]
    for row, m in zip(rows, models):
        row.update(model_stats(m, imgsz))

    fused = []
    for m in models:
        f = copy.deepcopy(m)
        if hasattr(f, "fuse"):
            f = f.fuse(verbose=False)
        fused.append(f.eval())
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        times = time_forward(fused, imgsz, runs, warmup, progress)
    finally:
        torch.set_num_threads(previous)
    for row, t in zip(rows, times):
        row.update(
            latency_ms=statistics.median(t), latency_min_ms=min(t), latency_max_ms=max(t), runs=runs,
            threads=threads, imgsz=imgsz,
        )
    return rows


def _display_name(source: Any) -> str:
    """Short label of a model source: the file name, or the module class name."""
    return type(source).__name__ if isinstance(source, nn.Module) else Path(str(source)).name


def _delta(a: float, b: float, fmt: str) -> str:
    """Format ``b - a`` with a sign, and the relative change when ``a`` is non-zero."""
    d = b - a
    rel = f" ({d / a:+.2%})" if a else ""
    return f"{d:+{fmt}}{rel}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Render :func:`compare_models` rows (A, B) as a fixed-width text table with a B − A column."""
    a, b = rows
    lines = [
        ("YAML rows", "rows", "d"),
        ("layers", "layers", ",d"),
        ("parameters", "parameters", ",d"),
        (f"GFLOPs @{a['imgsz']}", "gflops", ".3f"),
        (f"CPU latency ms (median of {a['runs']}, {a['threads']} thread{'s' * (a['threads'] > 1)})", "latency_ms",
         ".2f"),
        ("CPU latency ms (min)", "latency_min_ms", ".2f"),
    ]
    rows_out = [("", a["name"], b["name"], "B - A")]
    for label, key, fmt in lines:
        if a.get(key) is None or b.get(key) is None:
            continue
        rows_out.append((label, format(a[key], fmt), format(b[key], fmt), _delta(a[key], b[key], fmt.lstrip(","))))
    return table(rows_out)


def plot_comparison(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Draw parameters, GFLOPs and median CPU latency of the compared models as bar charts into a PNG.

    Args:
        rows (list[dict]): Output of :func:`compare_models` (or any rows with ``name``, ``parameters``, ``gflops``
            and ``latency_ms``).
        out (str | Path): Destination ``.png``; parent folders are created.

    Returns:
        (Path): The written file.
    """
    out = Path(out)
    names = [r["name"] for r in rows]
    panels = [
        ("Parameters (M)", [r["parameters"] / 1e6 for r in rows], [f"{r['parameters']:,}" for r in rows]),
        (f"GFLOPs @{rows[0].get('imgsz', '?')}", [r["gflops"] for r in rows], [f"{r['gflops']:.3f}" for r in rows]),
        ("CPU latency, median (ms)", [r["latency_ms"] for r in rows], [f"{r['latency_ms']:.1f}" for r in rows]),
    ]
    colors = ["#4C72B0", "#DD8452", "#55A868", "#C44E52"]
    with figure(out, (4.2 * len(panels), 3.8), dpi=120) as fig:
        for ax, (title, values, labels) in zip(fig.subplots(1, len(panels)), panels):
            bars = ax.bar(range(len(values)), values, color=colors[: len(values)])
            ax.set_xticks(range(len(values)), names, rotation=12, ha="right", fontsize=8)
            ax.set_title(title, fontsize=10)
            ax.bar_label(bars, labels=labels, fontsize=8)
            ax.margins(y=0.15)
        threads = rows[0].get("threads")
        fig.suptitle(f"Model comparison (CPU, {threads} thread{'s' * ((threads or 1) > 1)})", fontsize=11)
    return out
