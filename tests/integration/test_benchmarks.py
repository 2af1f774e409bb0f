"""The benchmark scripts a user runs from a checkout (``benchmarks/``), on tiny inputs so they finish in seconds."""

from __future__ import annotations

import importlib.util
import json
import math
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


def deploy(tmp_path: Path, *args: str, timeout: int = 900):
    """``bench_deploy.py`` on yolov5n at 64 px with ``args``, keeping its exports in ``tmp_path/out``."""
    return run([sys.executable, str(BENCHMARKS / "bench_deploy.py"), "--model", "yolov5n", "--sizes", "64", *args,
                "--keep", str(tmp_path / "out")], tmp_path, timeout=timeout)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_bench_deploy_prints_each_variants_overhead_node_counts_and_the_profile(tmp_path):
    p = deploy(tmp_path, "--rounds", "3", "--runtimes", "onnxruntime", "--profile", "--profile-runs", "2")
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
    p = deploy(tmp_path, "--rounds", "2", "--runtimes", "openvino", "--int8", "--int8-images", "4", timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    # plain INT8's ms, the three placements over it; the official-style and any-size graphs are FP32 only
    assert re.search(r"^openvino int8\s+64\s+[\d.]+(?:\s+[+-][\d.]+% \([^)]*\)){3}\s+-\s+-\s*$", out, re.M), out
    assert "openvino int8 64: dense" in out and "vs dense, NNCF defaults" in out and "as fast as plain FP32" in out
    fed = dict(re.findall(r"^  (triplet-dense|dense, NNCF defaults)\s+(\d+):", out, re.M))
    assert fed["triplet-dense"] == "0" and int(fed["dense, NNCF defaults"]) > 0  # the attention left in float
    again = deploy(tmp_path, "--rounds", "2", "--runtimes", "openvino", "--int8", "--reuse", timeout=600)
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


def test_bench_choice_times_two_checkouts_in_turn_and_prints_their_ratio(tmp_path):
    root = BENCHMARKS.parent
    p = run([sys.executable, str(BENCHMARKS / "bench_choice.py"), "--against", str(root), "--rounds", "2", "--calls",
             "20", "--repeats", "3"], tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    for context in ("eager inference", "eager training", "traced"):  # each checkout's time, then the ratio per round
        assert re.search(rf"^{context}\s+[\d.]+\s+[\d.]+\s+median [\d.]+ \([\d.]+-[\d.]+\)$", p.stdout, re.M), p.stdout


def bench_gpu(tmp_path, *args: str) -> tuple[str, dict]:
    """Run ``benchmarks/bench_gpu.py --device cpu --quick`` with ``args``; its printed text and its results file."""
    out = tmp_path / "gpu.json"
    p = run([sys.executable, str(BENCHMARKS / "bench_gpu.py"), "--device", "cpu", "--quick", "--out", str(out), *args],
            tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.with_suffix(".txt").read_text() == p.stdout  # the text file holds what was printed
    return p.stdout, json.loads(out.read_text())


def finite_ratio(r: dict) -> bool:
    """A per-round ratio summary with positive finite values, min <= median <= max."""
    values = [r["min"], r["median"], r["max"]]
    return all(math.isfinite(v) and v > 0 for v in values) and values == sorted(values)


def test_bench_gpu_runs_every_section_on_the_cpu_and_writes_what_it_printed(tmp_path):
    import torch

    from ultralytics_triplet.formulation import FORMULATIONS

    text, r = bench_gpu(tmp_path)
    assert f"torch {torch.__version__}, CUDA {torch.version.cuda}" in text and re.search(r"^Device: cpu: ", text, re.M)
    for n in range(1, 5):
        assert re.search(rf"^{n}\. ", text, re.M), n
    # 1: the formulation asked in each context, on the fused-size map and on the small one
    chosen = {row["context"]: row["formulations"] for row in r["formulations"]}
    assert chosen["float32, eval, no grad"] == ["no_grad", "small"]
    assert chosen["float32, training"] == ["fused", "small"]
    assert chosen["autocast fp16, training"] == ["autocast"] * 2
    assert chosen["float16 module, eval, no grad"] == ["plain"] * 2
    # 2: every formulation of the table, each precision; float64 and float32 match on the CPU, as the unit tests say
    match = r["match"]["results"]
    assert set(match) == {f.name for f in FORMULATIONS}
    for name, row in match.items():
        assert row["float64"]["status"] == row["float32"]["status"] == "match", (name, row["float32"])
        assert {v["status"] for v in row.values()} <= {"match", "differs", "cannot run", "not run"}
        assert (row["autocast fp16"]["status"] == "not run") == (name not in ("plain", "autocast"))
    # 3: both passes of every map in every precision, timed side by side, with the memory autograd keeps
    rows = r["modules"]["rows"]
    assert sorted((row["precision"], tuple(row["map"])) for row in rows) == sorted(
        (p, m) for p in ("float32", "bf16", "fp16") for m in ((32, 24, 24), (64, 8, 8)))
    for row in rows:
        assert all(finite_ratio(row["ratios"][p]["official / ours"]) for p in ("inference", "training"))
        assert row["memory_bytes"]["saved official"] > 0 and row["memory_bytes"]["saved ours"] > 0
    assert set(r["modules"]["summary"]) == {"float32", "bf16", "fp16"}
    # 4: the three networks in each context, against plain yolov5s, with the formulations their modules ran
    nets = r["networks"]["contexts"]
    assert set(nets) == {"train", "inference float32"}  # float16 inference on CUDA only
    for context in nets.values():
        assert finite_ratio(context["ratios"]["yolov5s-triplet-neck"]) and finite_ratio(
            context["ratios"]["yolov5s-triplet-dense"])
        ran = context["formulations"]
        assert ran["yolov5s"] == "none" and re.fullmatch(r"\w+ x3", ran["yolov5s-triplet-neck"]) and re.fullmatch(
            r"(\w+ x\d( \+ )?)+", ran["yolov5s-triplet-dense"])
    assert nets["train"]["formulations"]["yolov5s-triplet-dense"] == "autocast x8"  # bf16 autocast on the CPU
    assert not re.search(r"^ +compiled: |^yolov5s\S* compiled ", text, re.M)  # no compiled rows without --compile


def test_bench_gpu_compile_times_each_module_compiled_beside_eager(tmp_path):
    """The --compile path, with dynamo's eager backend (inductor compiles for minutes on a busy CPU)."""
    text, r = bench_gpu(tmp_path, "--compile", "--compile-backend", "eager", "--skip-match", "--skip-networks",
                        "--precisions", "float32")
    assert "match" not in r and "networks" not in r
    for row in r["modules"]["rows"]:
        for p in ("inference", "training"):
            ratios = row["ratios"][p]
            assert set(ratios) == {"official / ours", "compiled official / ours", "official eager / compiled",
                                   "ours eager / compiled"} and all(map(finite_ratio, ratios.values()))
            assert row["compile"][f"{p} ours compiled"]["graph_breaks"] >= 0
    assert len(re.findall(r"^ +compiled: compiled official / ours ", text, re.M)) == 4  # 2 maps x 2 passes


def test_bench_gpu_refuses_bad_arguments_in_one_line(tmp_path):
    script = str(BENCHMARKS / "bench_gpu.py")
    p = run([sys.executable, script, "--precisions", "float32,fp8"], tmp_path, timeout=120)
    assert p.returncode == 2
    assert "--precisions takes a comma-separated list of float32, bf16, fp16, got ['fp8']" in p.stderr
    p = run([sys.executable, script, "--device", "tpu"], tmp_path, timeout=120)
    assert p.returncode == 2 and "--device must be cpu, cuda or cuda:N, got 'tpu'" in p.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_bench_gpu_says_in_one_line_when_torch_sees_no_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    p = run([sys.executable, str(BENCHMARKS / "bench_gpu.py"), "--out", str(tmp_path / "gpu.json")], tmp_path,
            timeout=300)
    assert p.returncode == 1 and not list(tmp_path.iterdir())
    assert p.stderr.strip().splitlines()[-1].startswith("bench_gpu: --device cuda, but torch ")
    assert "run with --device cpu --quick" in p.stderr
