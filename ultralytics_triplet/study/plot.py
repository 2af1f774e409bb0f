"""A study's chart: what the verdict reads, each variant's paired difference to the plain model, beside the values.

One row per variant, as in the table. The first two panels show, for each metric, the difference to the plain model
at each seed (dots), their mean and its 95% t-interval (a bar, coloured by what the verdict reads), and a line at 0;
the last panel shows each seed's value of the verdict's metric and its mean ± std.
"""

from __future__ import annotations

import math
from pathlib import Path

from .._plot import figure
from .plan import Plan
from .report import Summary

__all__ = ("differences", "plot_study")

COLOURS = {"higher": "#2E7D32", "lower": "#C62828", "none": "#4C72B0"}  # interval above 0, below 0, containing it


def differences(rows: list[Summary], i: int) -> list[list[float]]:
    """Metric ``i``'s (1 or 2) paired differences to the plain model, seed by seed, for each row (empty for the plain
    model's)."""
    plain = rows[0][f"m{i}"]
    return [[] if k == 0 else [v - p for v, p in zip(r[f"m{i}"], plain)] for k, r in enumerate(rows)]


def _reading(lo: float, hi: float) -> str:
    return "none" if math.isnan(lo) or lo <= 0 <= hi else "higher" if lo > 0 else "lower"


def _spread(values: list[float], y: float) -> list[float]:
    """Vertical positions for one row's dots, spread a little so that equal values stay visible."""
    return [y + 0.18 + (k - (len(values) - 1) / 2) * 0.05 for k in range(len(values))]


def plot_study(rows: list[Summary], path: Path, plan: Plan):
    """Draw the chart as a PNG at ``path``; return the matplotlib Figure.

    Panels: Δ of the verdict's metric, Δ of the second metric (paired differences: each seed, mean, 95% interval,
    a line at 0), and the verdict's metric per seed with its mean ± std.
    """
    s = plan.settings
    labels = rows[0].metrics
    ys = list(range(len(rows)))[::-1]  # the plain model on top, as in the table
    with figure(path, (13.0, 1.6 + 0.45 * len(rows))) as fig:
        axes = fig.subplots(1, 3, sharey=True, gridspec_kw={"width_ratios": (1.25, 1.25, 1.0)})
        for ax, i in zip(axes[:2], (1, 2)):
            ax.axvline(0.0, color="0.25", linewidth=1, zorder=1)
            for r, d, y in zip(rows, differences(rows, i), ys):
                interval = r[f"d{i}"]
                if interval is None:
                    ax.text(0.0, y, " plain model ", ha="center", va="center", fontsize=8, color="0.35",
                            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
                    continue
                colour = COLOURS[_reading(interval.lo, interval.hi)]
                ax.scatter(d, _spread(d, y), s=14, color="0.45", alpha=0.8, zorder=2,
                           label="one seed" if y == ys[1] else None)
                lo, hi = (interval.mean, interval.mean) if math.isnan(interval.lo) else (interval.lo, interval.hi)
                ax.errorbar([interval.mean], [y], xerr=[[interval.mean - lo], [hi - interval.mean]], fmt="o",
                            color=colour, capsize=4, zorder=3, label="mean, 95% CI" if y == ys[1] else None)
            ax.set_title(f"Δ{labels[i - 1]} vs {rows[0].config}" + (" (the verdict's)" if i == 1 else ""),
                         fontsize=10)
            ax.set_xlabel("variant − plain model at the same seed", fontsize=8)
            ax.grid(axis="x", alpha=0.3)
        axes[0].legend(fontsize=8, loc="best")
        ax = axes[2]
        for r, y in zip(rows, ys):
            values, mean, std = r.m1, r.m1_mean, r.m1_std
            ax.scatter(values, _spread(values, y), s=14, color="0.45", alpha=0.8, zorder=2)
            ax.errorbar([mean], [y], xerr=[0 if math.isnan(std) else std], fmt="o", color="#8172B3", capsize=4,
                        zorder=3, label="mean ± std" if y == ys[0] else None)
        ax.axvline(rows[0].m1_mean, color="0.6", linestyle="--", linewidth=1, zorder=1)
        ax.set_title(f"{labels[0]} per seed", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        axes[0].set_yticks(ys, [r.config for r in rows], fontsize=8)
        axes[0].set_ylim(-0.6, len(rows) - 0.4)
        fig.suptitle(f"{plan.seeds} seeds, {s['epochs']} epoch{'s' * (s['epochs'] > 1)}, imgsz {s['imgsz']}: "
                     "differences paired by seed; green/red: 95% interval above/below 0", fontsize=10)
    return fig
