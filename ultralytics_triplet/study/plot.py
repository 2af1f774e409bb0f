"""A study's chart: what the verdict reads, each row's paired difference to the plain model, beside the values, and
accuracy against latency.

Top, one line per row, as in the table: for each metric, the difference to the plain model at each seed (dots), their
mean and its 95% t-interval (a bar, coloured by what the verdict reads), and a line at 0; then each seed's value of
the verdict's metric and its mean ± std. Below, the decision: each row's mean of the verdict's metric with its 95%
interval against its latency relative to the plain model with its 95% interval (the geometric mean of the ratio in the
same rounds, as the worth-it column reads it), each point labelled. The front is ringed (the choice where it is one
row) and a line joins its rows only where there are several; a row that is not worth it is drawn hollow, with a line
to the row it is weighed against: dashed where it is a tie on both counts, which goes to the cheaper row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from .._plot import figure
from .plan import Plan
from .readings import Reason, Standing
from .report import MetricSummary, Summary, latency_header
from .variants import Role

__all__ = ("differences", "plot_study")

COLOURS = {"higher": "#2E7D32", "lower": "#C62828", "none": "#4C72B0"}  # interval above 0, below 0, containing it
ROLES = {  # how the chart names each role, and its colour
    Role.PLAIN: ("plain model", "0.3"), Role.REFERENCE: ("reference", "#DD8452"), Role.VARIANT: ("variant", "#4C72B0"),
}
FRONT_COLOUR = "#2E7D32"


def differences(rows: Sequence[Summary], metric: str = "verdict") -> list[list[float]]:
    """The paired differences to the plain model, seed by seed, of each row's ``verdict`` or ``second`` metric (empty
    for the plain model's row)."""
    pick = (lambda r: r.verdict_metric) if metric == "verdict" else (lambda r: r.second_metric)
    plain = pick(rows[0]).values
    return [[] if k == 0 else [v - p for v, p in zip(pick(r).values, plain)] for k, r in enumerate(rows)]


def _reading(lo: float, hi: float) -> str:
    return "none" if math.isnan(lo) or lo <= 0 <= hi else "higher" if lo > 0 else "lower"


def _spread(values: Sequence[float], y: float) -> list[float]:
    """Vertical positions for one row's dots, spread a little so that equal values stay visible."""
    return [y + 0.18 + (k - (len(values) - 1) / 2) * 0.05 for k in range(len(values))]


def _difference_panel(ax, rows: Sequence[Summary], ys: list[int], metric: str) -> None:
    """Each row's paired differences of one metric: each seed, the mean and its 95% interval, a line at 0."""
    ax.axvline(0.0, color="0.25", linewidth=1, zorder=1)
    for r, d, y in zip(rows, differences(rows, metric), ys):
        summary: MetricSummary = r.verdict_metric if metric == "verdict" else r.second_metric
        interval = summary.difference
        if interval is None:
            ax.text(0.0, y, " plain model ", ha="center", va="center", fontsize=8, color="0.35",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
            continue
        colour = COLOURS[_reading(interval.lo, interval.hi)]
        ax.scatter(d, _spread(d, y), s=14, color="0.45", alpha=0.8, zorder=2, label="one seed" if y == ys[1] else None)
        lo, hi = (interval.mean, interval.mean) if math.isnan(interval.lo) else (interval.lo, interval.hi)
        ax.errorbar([interval.mean], [y], xerr=[[interval.mean - lo], [hi - interval.mean]], fmt="o", color=colour,
                    capsize=4, zorder=3, label="mean, 95% CI" if y == ys[1] else None)
    label = (rows[0].verdict_metric if metric == "verdict" else rows[0].second_metric).label
    ax.set_title(f"Δ{label} vs {rows[0].config}" + (" (the verdict's)" if metric == "verdict" else ""), fontsize=10)
    ax.set_xlabel("row − plain model at the same seed", fontsize=8)
    ax.grid(axis="x", alpha=0.3)


def _values_panel(ax, rows: Sequence[Summary], ys: list[int]) -> None:
    """Each seed's value of the verdict's metric, and its mean ± std."""
    for r, y in zip(rows, ys):
        m = r.verdict_metric
        ax.scatter(m.values, _spread(m.values, y), s=14, color="0.45", alpha=0.8, zorder=2)
        ax.errorbar([m.mean], [y], xerr=[0 if math.isnan(m.std) else m.std], fmt="o", color="#8172B3", capsize=4,
                    zorder=3, label="mean ± std" if y == ys[0] else None)
    ax.axvline(rows[0].verdict_metric.mean, color="0.6", linestyle="--", linewidth=1, zorder=1)
    ax.set_title(f"{rows[0].verdict_metric.label} per seed", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _label(ax, rows: Sequence[Summary], fontsize: float = 7.0) -> None:
    """Name each point; a label that would cover another label or a point moves a line up or down (the nearest free
    place), with a line to its point, so all stay readable.

    Call with the axes laid out: label boxes are placed in display units.
    """
    dpi = ax.figure.dpi
    points = sorted(((r.cost.latency_ratio, r.verdict_metric.mean, r.config) for r in rows), key=lambda p: p[1])
    line = fontsize * 1.35 * dpi / 72  # one text line, in pixels
    marker = 7 * dpi / 72
    where = [tuple(ax.transData.transform((x, y))) for x, y, _ in points]
    taken = [(px - marker, py - marker, px + marker, py + marker) for px, py in where]  # the points themselves
    for (x, y, name), (px, py) in zip(points, where):
        width = len(name) * fontsize * 0.62 * dpi / 72
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6):
            box = (px + marker + 2, py + 2 + shift * line, px + marker + 2 + width, py + 2 + (shift + 1) * line)
            if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken):
                break
        taken.append(box)
        ax.annotate(name, (x, y), xytext=((box[0] - px) * 72 / dpi, (box[1] - py) * 72 / dpi),
                    textcoords="offset points", fontsize=fontsize, color="0.2", va="bottom",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6} if shift else None)


def _bounds(mean: float, lo: float, hi: float) -> tuple[float, float]:
    """The lengths below and above ``mean`` of its interval (0 where it has none), as matplotlib's error bars take."""
    return (0.0, 0.0) if math.isnan(lo) or math.isnan(hi) else (mean - lo, hi - mean)


def _front_panel(ax, rows: Sequence[Summary]) -> list[Summary]:
    """Each row's mean of the verdict's metric against its latency, both with their 95% intervals; the front ringed,
    joined where it has several rows; rows not worth it hollow, with a line to the row they are weighed against
    (dashed: a tie); return the rows drawn (to be labelled once the figure is laid out)."""
    measured = [r for r in rows if r.cost is not None and not math.isnan(r.cost.latency_ratio)]
    at = {r.config: (r.cost.latency_ratio, r.verdict_metric.mean) for r in measured}
    named = set()
    for r in measured:
        name, colour = ROLES[r.role]
        m, c = r.verdict_metric, r.cost
        worth = r.worth.standing if r.worth else None
        ax.errorbar([c.latency_ratio], [m.mean], yerr=[[v] for v in _bounds(m.mean, m.interval.lo, m.interval.hi)],
                    xerr=[[v] for v in _bounds(c.latency_ratio, c.latency_lo, c.latency_hi)], fmt="o", color=colour,
                    mfc="white" if worth is Standing.NOT_WORTH_IT else colour, capsize=4, zorder=3,
                    label=None if name in named else name)
        named.add(name)
    for r in measured:  # each row not worth it: a line to the row it is weighed against
        if r.worth is None or r.worth.standing is not Standing.NOT_WORTH_IT:
            continue
        tie = r.worth.reason is Reason.TIE
        name = "a tie on both counts, gone to the cheaper row" if tie else "not worth it against the row it leads to"
        (x0, y0), (x1, y1) = at[r.config], at[r.worth.versus]
        ax.plot([x0, x1], [y0, y1], color="0.55", linewidth=0.9, linestyle="--" if tie else ":", zorder=2,
                label=None if name in named else name)
        named.add(name)
    on_front = sorted((r for r in measured if r.worth is not None and r.worth.standing in (Standing.CHOICE,
                                                                                          Standing.ON_FRONT)),
                      key=lambda r: r.cost.latency_ratio)
    if on_front:
        xs, ys = [r.cost.latency_ratio for r in on_front], [r.verdict_metric.mean for r in on_front]
        if len(on_front) > 1:  # rows each detectably better than the others on one count: a trade-off
            ax.step(xs, ys, where="post", color=FRONT_COLOUR, linewidth=1.5, alpha=0.8, zorder=4,
                    label="front (detectable trade-offs)")
        ax.scatter(xs, ys, s=130, facecolors="none", edgecolors=FRONT_COLOUR, linewidths=1.5, zorder=5,
                   label="the choice" if len(on_front) == 1 else "on the front")
    label = rows[0].verdict_metric.label
    ax.set_title(f"{label} against latency, both with 95% intervals: rows not worth it (hollow) are matched on both "
                 "counts by the row their line leads to", fontsize=10)
    ax.set_xlabel(f"latency relative to {rows[0].config} ({latency_header(rows)[:-3]}): geometric mean of the ratio "
                  "in the same interleaved rounds", fontsize=8)
    ratios = [r.cost.latency_ratio for r in measured if r.cost.latency_ratio > 0]
    if ratios and max(ratios) / min(ratios) > 3:  # a larger model far to the right: a log axis keeps the rest apart
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(LogLocator(base=2, subs=(1.0, 1.5)))
        ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.2g}×"))
    ax.set_ylabel(f"{label}: mean, 95% CI", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.margins(x=0.15, y=0.1)
    return measured


def plot_study(rows: Sequence[Summary], path: Path, plan: Plan):
    """Draw the chart as a PNG at ``path``; return the matplotlib Figure.

    Panels (``fig.axes`` in this order): Δ of the verdict's metric, Δ of the second metric (paired differences: each
    seed, mean, 95% interval, a line at 0), the verdict's metric per seed with its mean ± std, and the verdict's metric
    against latency with the front.
    """
    s = plan.settings
    ys = list(range(len(rows)))[::-1]  # the plain model on top, as in the table
    height = 1.6 + 0.45 * len(rows)
    with figure(path, (13.0, height + 4.6)) as fig:
        grid = fig.add_gridspec(2, 3, width_ratios=(1.25, 1.25, 1.0), height_ratios=(height, 4.6))
        first = fig.add_subplot(grid[0, 0])
        axes = [first, fig.add_subplot(grid[0, 1], sharey=first), fig.add_subplot(grid[0, 2], sharey=first)]
        _difference_panel(axes[0], rows, ys, "verdict")
        _difference_panel(axes[1], rows, ys, "second")
        axes[0].legend(fontsize=8, loc="best")
        _values_panel(axes[2], rows, ys)
        axes[0].set_yticks(ys, [r.config for r in rows], fontsize=8)
        for ax in axes[1:]:
            ax.tick_params(labelleft=False)
        axes[0].set_ylim(-0.6, len(rows) - 0.4)
        decision = fig.add_subplot(grid[1, :])
        measured = _front_panel(decision, rows)
        fig.suptitle(f"{plan.options.seeds} seeds, {s.epochs} epoch{'s' * (s.epochs > 1)}, imgsz {s.imgsz}: "
                     "differences paired by seed; green/red: 95% interval above/below 0", fontsize=10)
        fig.tight_layout()  # the labels are placed where the laid-out axes put their points
        _label(decision, measured)
    return fig
