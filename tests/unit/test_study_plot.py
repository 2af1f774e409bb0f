"""The study's chart (``ultralytics_triplet.study.plot``): each row's paired differences, and accuracy against latency
with the front."""

from __future__ import annotations

import pytest
from helpers import costed, fake_plan, fake_records, fake_variants

from ultralytics_triplet.study.decision import front, judge
from ultralytics_triplet.study.plot import differences, plot_study
from ultralytics_triplet.study.readings import Standing
from ultralytics_triplet.study.report import summarize
from ultralytics_triplet.study.variants import Role

pytestmark = pytest.mark.compat


def test_the_chart_shows_each_rows_paired_difference_and_accuracy_against_latency_with_the_front(tmp_path):
    import matplotlib.image
    import numpy as np
    from matplotlib.collections import PathCollection

    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None)))
    rows = judge(summarize(plan, fake_records({"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.23],
                                               "yolov5s.yaml": [0.30, 0.35]})))
    rounds = {k: [ms * (1 + 0.05 * ((j + k) % 3 - 1)) for j in range(6)] for k, ms in enumerate([5.0, 7.0, 6.0])}
    rows = front(costed(rows, [5.0, 7.0, 6.0], rounds=rounds))  # TA: no gain over the plain model, 40% slower
    assert [r.worth.standing for r in rows] == [Standing.CHOICE, Standing.NOT_WORTH_IT, Standing.NOT_WORTH_IT]
    assert differences(rows) == [[], [pytest.approx(0.05), pytest.approx(0.03)], [pytest.approx(0.2),
                                                                                  pytest.approx(0.15)]]
    fig = plot_study(rows, tmp_path / "study.png", plan)
    delta = fig.axes[0]
    assert "ΔmAP50-95" in delta.get_title() and "verdict" in delta.get_title()
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in delta.get_lines())  # the line at 0
    interval = rows[1].verdict_metric.difference
    bar = [c for c in delta.collections if not isinstance(c, PathCollection)]  # the errorbar's interval segment
    segment = np.asarray(bar[0].get_segments()[0])
    assert sorted(segment[:, 0]) == [pytest.approx(interval.lo), pytest.approx(interval.hi)]
    dots = [c for c in delta.collections if isinstance(c, PathCollection)]
    assert sorted(dots[0].get_offsets()[:, 0]) == [pytest.approx(0.03), pytest.approx(0.05)]  # one per seed
    assert [t.get_text() for t in delta.get_yticklabels()] == ["yolov5n.yaml", "yolov5n+TA@4.yaml", "yolov5s.yaml"]

    decision = fig.axes[3]
    assert "against latency" in decision.get_title() and "relative to yolov5n.yaml (ONNX)" in decision.get_xlabel()
    assert sorted(t.get_text() for t in decision.texts) == ["yolov5n+TA@4.yaml", "yolov5n.yaml", "yolov5s.yaml"]
    s = rows[2]  # x: the latency relative to the plain model, as the worth-it column reads it
    assert {t.get_text(): t.xy for t in decision.texts}["yolov5s.yaml"] == (pytest.approx(s.cost.latency_ratio),
                                                                            pytest.approx(0.325))
    segments = [np.asarray(seg) for c in decision.collections if not isinstance(c, PathCollection)
                for seg in c.get_segments()]
    xs = sorted(x for seg in segments for x in seg[:, 0] if seg[0, 1] == seg[1, 1])  # horizontal: latency intervals
    assert pytest.approx(s.cost.latency_lo) in xs and pytest.approx(s.cost.latency_hi) in xs
    assert s.cost.latency_lo < s.cost.latency_ratio < s.cost.latency_hi
    ys = sorted(y for seg in segments for y in seg[:, 1] if seg[0, 0] == seg[1, 0])  # vertical: each mean's interval
    assert pytest.approx(s.verdict_metric.interval.lo) in ys and pytest.approx(s.verdict_metric.interval.hi) in ys
    assert not [line for line in decision.get_lines() if line.get_label().startswith("front")]  # one row: no line
    ring = [c for c in decision.collections if isinstance(c, PathCollection) and c.get_label() == "the choice"]
    assert len(ring) == 1 and [tuple(p) for p in ring[0].get_offsets()] == [(1.0, pytest.approx(0.15))]
    leads = {line.get_label(): (list(line.get_xdata()), line.get_linestyle()) for line in decision.get_lines()}
    assert any(style == ":" and xs == [pytest.approx(rows[1].cost.latency_ratio), 1.0]
               for xs, style in leads.values())  # TA -> the plain model it is not worth it against
    png = matplotlib.image.imread(tmp_path / "study.png")
    assert png.shape[1] > 1000 and png.std() > 0


def test_a_tie_is_marked_as_a_tie_and_a_front_of_trade_offs_is_joined(tmp_path):
    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None)), seeds=3)
    rows = judge(summarize(plan, fake_records({"yolov5n.yaml": [0.10, 0.20, 0.30],
                                               "yolov5n+TA@4.yaml": [0.11, 0.19, 0.30],
                                               "yolov5s.yaml": [0.30, 0.41, 0.50]})))
    rows = front(costed(rows, [5.0, 5.1, 9.0]))  # TA: a tie with the cheaper plain model; yolov5s: better, slower
    assert [r.worth.standing for r in rows] == [Standing.ON_FRONT, Standing.NOT_WORTH_IT, Standing.ON_FRONT]
    decision = plot_study(rows, tmp_path / "study.png", plan).axes[3]
    lines = {line.get_label(): line for line in decision.get_lines()}
    tie = lines["a tie on both counts, gone to the cheaper row"]
    assert tie.get_linestyle() == "--" and list(tie.get_xdata()) == [pytest.approx(1.02), 1.0]
    step = [line for label, line in lines.items() if label.startswith("front")]
    assert len(step) == 1 and sorted(set(step[0].get_xdata())) == [1.0, pytest.approx(1.8)]


def test_labels_of_points_close_together_do_not_cover_each_other(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    more = [(f"yolov5n+CBAM@{k}.yaml", Role.VARIANT, "CBAM") for k in range(5)]
    plan = fake_plan(fake_variants(*more))
    values = {v.name: [0.10 + 0.001 * k, 0.20 + 0.001 * k] for k, v in enumerate(plan.variants)}
    rows = judge(summarize(plan, fake_records(values)))
    rows = front(costed(rows, [5.0 + 0.01 * k for k in range(7)]))  # one cluster
    fig = plot_study(rows, tmp_path / "study.png", plan)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[3].texts]
    assert len(boxes) == 7
    assert not [(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1:] if a.overlaps(b)]
