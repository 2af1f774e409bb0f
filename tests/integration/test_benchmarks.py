"""The benchmark scripts a user runs from a checkout (``benchmarks/``), on tiny inputs so they finish in seconds."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from helpers import run

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.newest_only,
    pytest.mark.skipif(not (BENCHMARKS / "bench_deploy.py").is_file(), reason="no benchmarks/ beside the tests"),
]


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_bench_deploy_prints_each_variants_overhead_node_counts_and_the_profile(tmp_path):
    p = run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--model", "yolov5n", "--sizes", "64", "--rounds",
             "3", "--runtimes", "onnxruntime", "--profile", "--profile-runs", "2", "--keep", str(tmp_path / "out")],
            tmp_path, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert "Machine: " in out and "Command: " in out
    row = re.search(r"^onnxruntime\s+64\s+([\d.]+)((?:\s+[+-][\d.]+% \([^)]*\)){5})\s*$", out, re.M)
    assert row, out  # the plain model's ms, then five overheads with their quartiles
    counts = re.search(r"^onnxruntime((?:\s+\d+){6})\s*$", out, re.M)
    plain, triplet, neck, dense, official, any_size = map(int, counts.group(1).split())
    assert plain < triplet < neck < dense and official > plain  # each placement adds attention rows
    assert any_size != dense  # the static graph of dense (full-axis pooling) and the one valid at every size differ
    assert "onnxruntime 64: dense" in out and "vs official-style" in out and "vs its any-size graph" in out
    assert re.search(r"^onnxruntime 64: ms per inference by operation type", out, re.M)
    assert re.search(r"^ReduceMax\s+0\.000 \(\s*0\)", out, re.M)  # the plain model has no reduction; dense has
    assert len(list((tmp_path / "out").rglob("*.onnx"))) == 6  # --keep: every variant's export stays


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("openvino", "nncf")),
                    reason="openvino or nncf is not installed")
def test_bench_deploy_int8_rows_time_the_quantized_models_beside_nncf_defaults(tmp_path):
    p = run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--model", "yolov5n", "--sizes", "64", "--rounds",
             "2", "--runtimes", "openvino", "--int8", "--int8-images", "4", "--keep", str(tmp_path / "out")],
            tmp_path, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    # plain INT8's ms, the three placements over it; the official-style and any-size graphs are FP32 only
    assert re.search(r"^openvino int8\s+64\s+[\d.]+(?:\s+[+-][\d.]+% \([^)]*\)){3}\s+-\s+-\s*$", out, re.M), out
    assert "openvino int8 64: dense" in out and "vs dense, NNCF defaults" in out and "as fast as plain FP32" in out
    fed = dict(re.findall(r"^  (triplet-dense|dense, NNCF defaults)\s+(\d+):", out, re.M))
    assert fed["triplet-dense"] == "0" and int(fed["dense, NNCF defaults"]) > 0  # the attention left in float
    again = run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--model", "yolov5n", "--sizes", "64", "--rounds",
                 "2", "--runtimes", "openvino", "--int8", "--keep", str(tmp_path / "out"), "--reuse"], tmp_path,
                timeout=600)
    assert again.returncode == 0 and "reusing the exports" in again.stdout and "exported" not in again.stdout


def test_bench_deploy_refuses_bad_arguments_in_one_line(tmp_path):
    p = run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--sizes", "100"], tmp_path, timeout=120)
    assert p.returncode == 2 and "--sizes must be multiples of 32, got [100]" in p.stderr
    p = run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--reuse", "--keep", str(tmp_path / "no")], tmp_path,
            timeout=120)
    assert p.returncode == 2 and "--reuse times the files of an earlier --keep run" in p.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_bench_triplet_reports_the_small_maps_and_whether_ours_is_never_slower(tmp_path):
    p = run([sys.executable, str(BENCHMARKS / "bench_triplet.py"), "--skip-networks", "--reps", "2", "--batch", "2"],
            tmp_path, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    for batch in (8, 1):
        for c in (128, 256, 512):
            for side in (2, 5, 10):  # each small map: official and ours, inference and training step, two ratios
                assert re.search(rf"^{batch} x {c}x{side}x{side}(\s+[\d.]+){{6}}\s*$", out, re.M), out
    for label in ("inference forward", "training step"):  # a verdict over every map, small ones included
        assert re.search(rf"^  {label}\s+(PASS|FAIL): lowest official/ours [\d.]+ \(\d+ x \d+x\d+x\d+\)", out, re.M)
