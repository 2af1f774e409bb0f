"""A study's chart: each seed's value as a dot and the mean ± std per variant, for both metrics."""

from __future__ import annotations

import math
from pathlib import Path

from .._plot import figure
from .plan import Plan
from .report import Summary

__all__ = ("plot_study",)


def plot_study(rows: list[Summary], path: Path, plan: Plan) -> None:
    """Each seed's value as a dot, the mean with a ±std error bar, per variant and per metric (a PNG)."""
    s = plan.settings
    names = [r.config for r in rows]
    with figure(path, (max(6.0, 1.9 * len(rows)) * 2 / 1.6, 4.2)) as fig:
        axes = fig.subplots(1, 2)
        for ax, i in zip(axes, (1, 2)):
            for x, r in enumerate(rows):
                values, mean, std = r[f"m{i}"], r[f"m{i}_mean"], r[f"m{i}_std"]
                offsets = [(k - (len(values) - 1) / 2) * 0.06 for k in range(len(values))]
                ax.scatter([x - 0.12 + o for o in offsets], values, s=22, color="#4C72B0", alpha=0.8, zorder=3,
                           label="one seed" if x == 0 else None)
                ax.errorbar([x + 0.12], [mean], yerr=[0 if math.isnan(std) else std], fmt="o", color="#C44E52",
                            capsize=5, zorder=4, label="mean ± std" if x == 0 else None)
            ax.axhline(rows[0][f"m{i}_mean"], color="0.6", linestyle="--", linewidth=1, zorder=1)
            ax.set_xticks(range(len(rows)), names, rotation=15, ha="right", fontsize=8)
            ax.set_title(rows[0].metrics[i - 1], fontsize=10)
            ax.margins(x=0.15)
            ax.grid(axis="y", alpha=0.3)
        axes[0].legend(fontsize=8, loc="best")
        fig.suptitle(f"{plan.seeds} seeds, {s['epochs']} epoch{'s' * (s['epochs'] > 1)}, imgsz {s['imgsz']} "
                     f"(dashed: {names[0]} mean)", fontsize=10)
