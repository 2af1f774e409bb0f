"""The study's chart (``ultralytics_triplet.study.plot``): each row's paired differences, and accuracy against latency
with the front."""

from __future__ import annotations

import pytest
from helpers import costed, fake_plan, fake_records, fake_variants

from ultralytics_triplet.study.decision import front
from ultralytics_triplet.study.plot import differences, plot_study
from ultralytics_triplet.study.report import summarize
from ultralytics_triplet.study.variants import Role

pytestmark = pytest.mark.compat


def test_the_chart_shows_each_rows_paired_difference_and_accuracy_against_latency_with_the_front(tmp_path):
    import matplotlib.image
    import numpy as np
    from matplotlib.collections import PathCollection

    plan = fake_plan(fake_variants(("yolov5s.yaml", Role.REFERENCE, None)))
    rows = summarize(plan, fake_records({"yolov5n.yaml": [0.10, 0.20], "yolov5n+TA@4.yaml": [0.15, 0.23],
                                         "yolov5s.yaml": [0.30, 0.35]}))
    rows = front(costed(rows, [5.0, 7.0, 6.0]))  # the TA row is dominated by yolov5s.yaml
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
    # x: the latency relative to the plain model (6 ms against 5), as the front reads it
    assert {t.get_text(): t.xy for t in decision.texts}["yolov5s.yaml"] == (pytest.approx(1.2), pytest.approx(0.325))
    step = [line for line in decision.get_lines() if line.get_label().startswith("front")]
    assert len(step) == 1 and sorted(set(step[0].get_xdata())) == [1.0, pytest.approx(1.2)]  # the undominated rows
    means = {r.config: r.verdict_metric.interval for r in rows}
    caps = sorted(y for c in decision.collections if not isinstance(c, PathCollection)
                  for seg in c.get_segments() for y in np.asarray(seg)[:, 1])  # each mean's 95% interval
    assert pytest.approx(means["yolov5s.yaml"].lo) in caps and pytest.approx(means["yolov5s.yaml"].hi) in caps
    png = matplotlib.image.imread(tmp_path / "study.png")
    assert png.shape[1] > 1000 and png.std() > 0


def test_labels_of_points_close_together_do_not_cover_each_other(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    more = [(f"yolov5n+CBAM@{k}.yaml", Role.VARIANT, "CBAM") for k in range(5)]
    plan = fake_plan(fake_variants(*more))
    values = {v.name: [0.10 + 0.001 * k, 0.20 + 0.001 * k] for k, v in enumerate(plan.variants)}
    rows = front(costed(summarize(plan, fake_records(values)), [5.0 + 0.01 * k for k in range(7)]))  # one cluster
    fig = plot_study(rows, tmp_path / "study.png", plan)
    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[3].texts]
    assert len(boxes) == 7
    assert not [(a, b) for k, a in enumerate(boxes) for b in boxes[k + 1:] if a.overlaps(b)]
