"""A study's report: one summary per row (metrics, paired differences, verdict, costs, worth it), the table and the CSV.

Each metric of a row is a :class:`MetricSummary` (its values per seed, their mean with a 95% interval, and the paired
difference to the plain model); what a row costs is a :class:`Cost`; the row itself is a :class:`Summary`. Its role,
verdict and worth-it reading are typed values, put into words here (:func:`verdict_words`, :func:`worth_words`) as the
table and the CSV are written.
"""

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
from .plan import Plan
from .readings import LATENCY_TIE, Finding, Reason, Standing, Verdict, Worth
from .run import RunRecord
from .stats import LEVEL, MAX_SEEDS, Interval, log_ratio_interval, mean_interval, paired_interval
from .variants import Role

__all__ = ("Cost", "MetricSummary", "Summary", "csv_rows", "format_table", "label", "latency_header", "metrics_of",
           "summarize", "verdict_words", "worth_words", "write_csv")

# How the table names a metric, from its results key (ultralytics': _compat.METRIC_KEYS): the box, mask and pose
# kinds by their suffix, classification's accuracies by name
_KINDS = {"(B)": "", "(M)": "mask ", "(P)": "pose "}
_NAMES = {"accuracy_top1": "top-1 acc", "accuracy_top5": "top-5 acc"}


def label(key: str) -> str:
    """The table's name of a metric: ``metrics/mAP50-95(M)`` -> ``mask mAP50-95``, ``metrics/accuracy_top1`` ->
    ``top-1 acc``."""
    name = key.split("/", 1)[-1]
    for suffix, kind in _KINDS.items():
        if name.endswith(suffix):
            return kind + name[: -len(suffix)]
    return _NAMES.get(name, name)


def metrics_of(task: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two (label, results key) pairs a study reports for ``task`` (detection's for an unknown task); the first is
    the verdict's."""
    keys = _compat.METRIC_KEYS.get(task, _compat.METRIC_KEYS["detect"])
    return tuple((label(key), key) for key in keys)


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one row over the seeds.

    Attributes:
        label (str): The metric's name in the table (``mAP50-95``).
        values (tuple[float, ...]): Its value at each seed, in seed order.
        mean (float): Their mean.
        std (float): Their standard deviation (NaN with one seed).
        interval (Interval): The mean with its 95% t-interval over the seeds (what the chart draws).
        difference (Interval | None): The paired difference to the plain model at the same seeds, with its 95%
            t-interval; None for the plain model itself.
    """

    label: str
    values: tuple[float, ...]
    mean: float
    std: float
    interval: Interval
    difference: Interval | None


@dataclass(frozen=True)
class Cost:
    """What a row's trained model costs where it runs.

    Attributes:
        parameters (int): Parameters of the model as built.
        gflops (float): GFLOPs at the study's image size.
        latency_ms (float): Batch-1 latency, median over the interleaved rounds.
        latency_ratio (float): Its time over the plain model's in the same round, geometric mean over the rounds (1
            for the plain model).
        runtime (str): Where it was timed (``torch``, ``onnx``, ``openvino``).
        device (str): ``CPU`` or ``GPU``.
        latency_lo (float): Lower bound of the 95% interval of ``latency_ratio`` (NaN with fewer than 2 rounds).
        latency_hi (float): Its upper bound.
        rounds (tuple[float, ...]): Its per-call time in each round (ms), in round order: what rows are compared on.
    """

    parameters: int
    gflops: float
    latency_ms: float
    latency_ratio: float
    runtime: str
    device: str = "CPU"
    latency_lo: float = math.nan
    latency_hi: float = math.nan
    rounds: tuple[float, ...] = ()

    @classmethod
    def timed(cls, stats: dict[str, Any], rounds: Sequence[float], plain: Sequence[float], runtime: str,
              device: str = "CPU") -> Cost:
        """The cost of a row with ``stats`` (its ``parameters`` and ``gflops``) timed ``rounds`` ms per call, round by
        round beside the plain model's ``plain``: the median, and the geometric-mean ratio with its 95% interval."""
        ratio = log_ratio_interval(plain, rounds)  # its time over the plain model's in each round, in logs
        return cls(parameters=stats["parameters"], gflops=stats["gflops"], latency_ms=statistics.median(rounds),
                   latency_ratio=math.exp(ratio.mean), runtime=runtime, device=device, latency_lo=math.exp(ratio.lo),
                   latency_hi=math.exp(ratio.hi), rounds=tuple(rounds))


@dataclass(frozen=True)
class Summary:
    """One row of the table: the plain model, a reference, or a variant.

    Attributes:
        config (str): The row's config file name.
        role (Role): The plain model, a reference or a variant.
        placement (str | None): A variant's placement (``triplet``, ``after:4``).
        module (str | None): The module a variant inserts (``TripletAttention``, ``CBAM``).
        seeds (int): Runs of it that are recorded.
        verdict_metric (MetricSummary): The metric the verdict and the front read (mAP50-95 for detection).
        second_metric (MetricSummary): The other metric shown (mAP50 for detection).
        train_time_s (float): Mean epoch-loop time per run.
        weights (str): The first seed's weights, relative to the study folder (what the costs are measured on).
        p_value (float): Two-sided p-value of the paired t-test on the verdict's metric (NaN for the plain model).
        p_holm (float): ``p_value`` adjusted by Holm's method over the study's comparisons (equal to it when there is
            one comparison).
        verdict (Verdict | None): What the paired comparison with the plain model finds (``BASELINE`` for the plain
            model); None until judged.
        cost (Cost | None): Parameters, GFLOPs and latency, once measured.
        worth (Worth | None): The choice, on the front, or not worth it where row ``versus`` beats it; None until the
            costs are weighed.
    """

    config: str
    role: Role
    placement: str | None
    module: str | None
    seeds: int
    verdict_metric: MetricSummary
    second_metric: MetricSummary
    train_time_s: float
    weights: str
    p_value: float = math.nan
    p_holm: float = math.nan
    verdict: Verdict | None = None
    cost: Cost | None = None
    worth: Worth | None = None


def _metric(label: str, values: list[float], plain: list[float] | None) -> MetricSummary:
    return MetricSummary(
        label=label, values=tuple(values), mean=statistics.fmean(values),
        std=statistics.stdev(values) if len(values) > 1 else math.nan, interval=mean_interval(values),
        difference=None if plain is None else paired_interval(plain, values),
    )


def summarize(plan: Plan, records: Sequence[RunRecord]) -> list[Summary]:
    """One summary per row of the plan, the plain model first, from the records of its runs (in seed order)."""
    (label1, key1), (label2, key2) = metrics_of(plan.task)
    by_config = {v.name: sorted((r for r in records if r.config == v.name), key=lambda r: r.seed)
                 for v in plan.variants}
    plain = by_config[plan.plain.name]
    rows = []
    for v in plan.variants:
        rs = by_config[v.name]
        first, second = ([r.metrics.get(key, math.nan) for r in rs] for key in (key1, key2))
        is_plain = v.role is Role.PLAIN
        rows.append(Summary(
            config=v.name, role=v.role, placement=v.placement, module=v.module, seeds=len(rs),
            verdict_metric=_metric(label1, first, None if is_plain else [r.metrics.get(key1, math.nan) for r in plain]),
            second_metric=_metric(label2, second, None if is_plain else [r.metrics.get(key2, math.nan) for r in plain]),
            train_time_s=statistics.fmean(r.train_time_s or 0.0 for r in rs), weights=rs[0].weights,
            verdict=Verdict(Finding.BASELINE, label1, len(rs)) if is_plain else None,
        ))
    return rows


def _interval_text(d: Interval | None) -> str:
    """``+0.0123 [-0.0040, +0.0286]`` (or ``-`` for the baseline)."""
    if d is None:
        return "-"
    if math.isnan(d.lo):
        return f"{d.mean:+.4f}"
    return f"{d.mean:+.4f} [{d.lo:+.4f}, {d.hi:+.4f}]"


def verdict_words(v: Verdict | None) -> str:
    """A verdict in plain words: ``higher mAP50-95 (95% CI above 0, 3 seeds)``, ``lower mAP50-95 (Holm p 0.012, 3
    seeds)``, ``no difference detectable at 3 seeds``, ``only 1 paired seed: no interval``, ``baseline``."""
    if v is None:
        return ""
    if v.finding is Finding.BASELINE:
        return "baseline"
    if v.finding is Finding.NO_INTERVAL:
        return f"only {v.seeds} paired seed{'s' * (v.seeds != 1)}: no interval"
    if v.finding is Finding.NO_DIFFERENCE:
        return f"no difference detectable at {v.seeds} seeds"
    higher = v.finding is Finding.HIGHER
    evidence = f"95% CI {'above' if higher else 'below'} 0" if v.p_holm is None else f"Holm p {v.p_holm:.2g}"
    return f"{'higher' if higher else 'lower'} {v.metric} ({evidence}, {v.seeds} seeds)"


def worth_words(w: Worth | None) -> str:
    """A worth-it reading in words: ``the choice``, ``on the front``, ``no detectable gain over X at +19% latency``,
    ``ties with X (latency +1%, within the noise), which is cheaper``, ... ; ``-`` where there is none."""
    if w is None or w.standing is Standing.UNMEASURED:
        return "-"
    if w.standing is Standing.CHOICE:
        return "the choice"
    if w.standing is Standing.ON_FRONT:
        return "on the front"
    latency = f"{w.ratio - 1:+.0%}"
    return {
        Reason.NO_DETECTABLE_GAIN: f"no detectable gain over {w.versus} at {latency} latency",
        Reason.LESS_ACCURATE: f"less accurate than {w.versus} at a latency within the noise ({latency})",
        Reason.SLOWER_AND_LESS_ACCURATE: f"less accurate than {w.versus} and slower ({latency} latency)",
        Reason.TIE: f"ties with {w.versus} (latency {latency}, within the noise), which is cheaper",
    }[w.reason]


def _detectability_note(rows: Sequence[Summary]) -> str:
    """Footnote lines for the verdicts that find no difference: what their seeds detect, what a difference of the
    chosen size needs (``""`` where every verdict finds one)."""
    found = [(r.config, r.verdict) for r in rows if r.verdict and r.verdict.detectability]
    if not found:
        return ""
    first, label = found[0][1].detectability, rows[0].verdict_metric.label
    width = max(len(config) for config, _ in found)
    comparisons = round((1.0 - LEVEL) / first.level)
    why = "" if comparisons == 1 else f" (5% over {comparisons} comparisons, as Holm's first step tests)"
    lines = [f"No difference detectable: the smallest Δ{label} these seeds detect, either way, with "
             f"{first.power:.0%} power at the {100 * first.level:.3g}% level{why}, from the spread of each row's "
             f"paired differences; and about how many seeds a Δ{label} of {first.size:g} would need:"]
    for config, v in found:
        d = v.detectability
        seeds = f"about {d.seeds} seeds" if d.seeds is not None else f"more than {MAX_SEEDS} seeds"
        lines.append(f"  {config.ljust(width)}  {d.difference:.4f} at {v.seeds} seeds; {d.size:g} needs {seeds}")
    return "\n" + "\n".join(lines)


def _p_text(p: float) -> str:
    return "-" if math.isnan(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _latency_text(cost: Cost | None, plain: bool) -> str:
    """``6.8 (+24%)``: the median ms, and the geometric-mean ratio to the plain model in the same round."""
    if cost is None or math.isnan(cost.latency_ms):
        return "-"
    return f"{cost.latency_ms:.1f}" if plain else f"{cost.latency_ms:.1f} ({cost.latency_ratio - 1:+.0%})"


def _data_order_note(records: Sequence[RunRecord]) -> str:
    """A header line when some runs were shuffled the same way at every seed (ultralytics 8.3 with DDP), else ``""``."""
    fixed = [r for r in records if r.data_order == "fixed"]
    if not fixed:
        return ""
    releases = ", ".join(sorted({r.ultralytics for r in fixed}))
    return (f"\nData order: {len(fixed)} of {len(records)} runs were shuffled the same way at every seed (ultralytics "
            f"{releases}: its loader ignores the seed, and the study cannot reseed it in the processes DDP starts): "
            "their seeds differ in initialisation and augmentation only, so the intervals can come out narrower than "
            "the run-to-run noise.")


def latency_header(rows: Sequence[Summary]) -> str:
    """The latency column's header: ``CPU ms`` (PyTorch), ``ONNX ms``, ``OpenVINO ms``."""
    cost = rows[0].cost
    if cost is None or cost.runtime == "torch":
        return f"{cost.device if cost else 'CPU'} ms"
    return {"onnx": "ONNX ms", "openvino": "OpenVINO ms"}.get(cost.runtime, f"{cost.runtime} ms")


def format_table(rows: Sequence[Summary], plan: Plan, records: Sequence[RunRecord] = (), latency_note: str = "") -> str:
    """The study's table: one row per model, with the budget (and any data-order caveat) on top and how to read it
    below: the paired differences, the verdict (Holm-adjusted where there are several comparisons), the front, and
    ``latency_note`` (where and how the latency column was measured)."""
    s = plan.settings
    label1, label2 = rows[0].verdict_metric.label, rows[0].second_metric.label
    compared = len(rows) - 1
    lat = latency_header(rows)
    header = ("config", label1, label2, f"Δ{label1} [95% CI]", f"Δ{label2} [95% CI]",
              "p (Holm)" if compared > 1 else "p", "params", f"GFLOPs@{s.imgsz}", lat, "train time", "verdict",
              "worth it")
    body = [header]
    for r in rows:
        m1, m2 = r.verdict_metric, r.second_metric
        body.append((
            r.config, f"{m1.mean:.4f} ± {m1.std:.4f}", f"{m2.mean:.4f} ± {m2.std:.4f}",
            _interval_text(m1.difference), _interval_text(m2.difference),
            _p_text(r.p_holm if compared > 1 else r.p_value),
            f"{r.cost.parameters:,}" if r.cost else "-", f"{r.cost.gflops:.4g}" if r.cost else "-",
            _latency_text(r.cost, r.role is Role.PLAIN), duration(r.train_time_s), verdict_words(r.verdict),
            worth_words(r.worth),
        ))
    data = Path(s.data)
    device = plan.options.device
    budget = (f"Study: {Path(s.model).name} on {data.parent.name}/{data.name}, seeds 0-{plan.options.seeds - 1}, "
              f"{s.epochs} epoch{'s' * (s.epochs > 1)}, imgsz {s.imgsz}, batch {s.batch}, "
              f"{'from ' + Path(s.pretrained).name if s.pretrained else 'from scratch'}"
              f"{', device ' + str(device) if device is not None else ''}")
    references = [r.config for r in rows if r.role is Role.REFERENCE]
    variants = [r for r in rows if r.role is Role.VARIANT]
    modules = list(dict.fromkeys(r.module for r in variants if r.module))
    what = (f"References ({', '.join(references)}) are plain models trained alike. " if references else "") + (
        f"Modules: {', '.join(modules)}. " if len(modules) > 1 or (modules and modules != ["TripletAttention"]) else "")
    if compared > 1:
        reading = (f"The verdict reads Holm-adjusted p-values (p (Holm)) of the paired t-tests on Δ{label1} over the "
                   f"{compared} comparisons, at the 5% level; the intervals are not adjusted.")
    else:
        reading = f"The verdict reads Δ{label1}'s interval (p: its paired t-test)."
    return (
        f"{budget}{_data_order_note(records)}\n{table(body)}\n"
        f"mean ± std over seeds. Δ: row − {rows[0].config} at the same seed, mean and 95% t-interval of the paired "
        f"differences. {what}{reading}{_detectability_note(rows)}\n"
        f"worth it: weighed on the verdict's evidence. A row beats another where it is at least as good on both "
        f"counts, not detectably less accurate ({label1}; against {rows[0].config} as the verdict reads it, between "
        f"other rows by the 95% interval of their paired difference) and not detectably slower (the 95% interval of "
        f"their latency ratio in the same rounds; under {LATENCY_TIE:.0%} a tie), and detectably better on one; a tie "
        f"on both counts goes to the cheaper row (GFLOPs, then parameters). A row is not worth it where "
        f"{rows[0].config} beats it, or a row on the front does; the rows left are the front: 'the choice' where one "
        f"is left.\n"
        f"{lat}: {latency_note}\n"
        f"train time: ultralytics' epoch-loop time, mean per run (the run's wall time where ultralytics writes no time "
        f"column)."
    )


def csv_rows(plan: Plan, records: Sequence[RunRecord], rows: Sequence[Summary]) -> list[dict[str, Any]]:
    """One dict per run, the columns of ``study.csv``: the run, and its row's role, module, p-values, verdict (with how
    far from detectable it is), latency (with its interval) and worth-it reading, in words and typed (metric columns
    named by their labels).

    Typed columns: ``standing`` and ``reason`` (``readings.Standing``, ``Reason`` values), ``versus`` (the row it is
    weighed against); ``latency_ratio_lo``/``_hi`` (the 95% interval of ``latency_ratio``); ``detectable_difference``
    (at ``detect_level`` with ``detect_power``) and ``seeds_needed`` (for a difference of ``seeds_needed_for``; inf:
    more than ``stats.MAX_SEEDS``), NaN where the verdict finds a difference.
    """
    (label1, key1), (label2, key2) = metrics_of(plan.task)
    by_config = {r.config: r for r in rows}
    out = []
    for r in records:
        row = by_config[r.config]
        cost, worth = row.cost, row.worth
        reach = row.verdict.detectability if row.verdict else None
        out.append({
            "config": r.config, "role": row.role.value, "placement": row.placement or "none",
            "module": row.module or "none", "seed": r.seed, label1: r.metrics.get(key1, math.nan),
            label2: r.metrics.get(key2, math.nan),
            "fitness": r.metrics.get("fitness", math.nan), "epochs": r.epochs_done, "train_time_s": r.train_time_s,
            "wall_s": r.wall_s, "status": r.status, "data_order": r.data_order, "run_dir": r.run_dir,
            "weights": r.weights, "host": r.host, "ultralytics": r.ultralytics,
            "p_value": row.p_value, "p_holm": row.p_holm, "verdict": verdict_words(row.verdict),
            "detectable_difference": reach.difference if reach else math.nan,
            "detect_level": reach.level if reach else math.nan, "detect_power": reach.power if reach else math.nan,
            "seeds_needed": (math.inf if reach.seeds is None else reach.seeds) if reach else math.nan,
            "seeds_needed_for": reach.size if reach else math.nan,
            "latency_runtime": cost.runtime if cost else "", "latency_ms": cost.latency_ms if cost else math.nan,
            "latency_ratio": cost.latency_ratio if cost else math.nan,
            "latency_ratio_lo": cost.latency_lo if cost else math.nan,
            "latency_ratio_hi": cost.latency_hi if cost else math.nan,
            "worth_it": worth_words(worth), "standing": worth.standing.value if worth else "",
            "reason": worth.reason.value if worth else "", "versus": (worth.versus or "") if worth else "",
        })
    return out


def write_csv(path: Path, runs: list[dict[str, Any]]) -> None:
    """Write the per-run rows as ``study.csv``, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(runs[0]))
            w.writeheader()
            for r in runs:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})

    atomic_write(path, write)
