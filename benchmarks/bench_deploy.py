"""Exported triplet models in the runtimes people deploy with: time over the plain model, side by side.

Usage:
    python benchmarks/bench_deploy.py                     # yolov5s at 320 and 640: ONNX Runtime, OpenVINO, NCNN
    python benchmarks/bench_deploy.py --profile           # also the per-operation breakdown of plain and dense
    python benchmarks/bench_deploy.py --runtimes openvino --int8 --profile   # OpenVINO INT8 beside FP32
    python benchmarks/bench_deploy.py --model yolov8n --sizes 320 --rounds 10 --runtimes onnxruntime

For each size, ultralytics' own exporter (``model.export(format=...)``: ONNX, OpenVINO, which converts from PyTorch,
and NCNN) writes the plain model, each named placement (``-triplet``, ``-triplet-neck``, ``-triplet-dense``), the
dense model with the official-style module (``ReferenceTriplet(official_max=True)``, the same weights) in its rows, and
the dense model with the graph a trace records when the size is not fixed (``forward_export``, which static ONNX and
OpenVINO exports replace with their own). Random weights, seed 0; timing does not depend on their values.

Each runtime then runs every variant at batch 1 on ``--threads`` threads, interleaved: one round runs each variant in
turn (a few calls each, at least ``MIN_ROUND_MS``), and a variant's overhead is the median over ``--rounds`` rounds
of its time divided by the plain model's in the same round, given with the range of the middle half of the rounds.
``--clock cpu`` times each call by this process's CPU time instead of the wall clock: other jobs on a shared machine
do not add to it, and with ``--threads 1`` it is what an inference costs (with more threads it also counts the time
the runtime's threads wait spinning). Interleaving is why ONNX Runtime's intra-op threads do not spin
(``session.intra_op.allow_spinning`` 0): spinning threads of one session would slow the next; for the same reason
NCNN's OpenMP threads do not wait spinning after a layer (``openmp_blocktime`` 0). OpenVINO runs with the LATENCY
hint. Each runtime's own precision defaults hold (OpenVINO runs bf16 on CPUs with AMX or AVX512-BF16, NCNN stores fp16
where the CPU supports it).

``--int8`` adds OpenVINO INT8 rows: plain, the named placements and the dense model exported once more with
``quantize=8`` (``int8=True`` before ultralytics 8.4), NNCF calibrating on ``--int8-images`` synthetic shapes images of
the size (``make_shapes_dataset``), timed in the same interleaved rounds as the FP32 rows, each over plain INT8. Beside
them, ``dense, NNCF defaults``: the dense model quantized by ultralytics' exporter as it is, without the ignored scope
this package adds for TripletAttention (``integration.py``), and the count of FakeQuantize nodes that feed the
attention rows in each INT8 graph. ``--int8-candidates`` adds two other quantizations of the dense model: only the
attention's additions in NNCF's ignored scope, and the attention quantized whole (its sigmoids too).

``--profile`` adds each runtime's per-operation times (ONNX Runtime's profiler, OpenVINO's performance counters) for
the plain, dense and official-style dense models, summed by operation type, and what the dense model adds: each node's
mean over ``--profile-runs`` inferences, or with ``--profile-stat min`` its least time, which a shared machine disturbs
less. Exports run with ultralytics' auto-install of missing requirements off, so nothing is installed or upgraded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

RUNTIMES = ("onnxruntime", "openvino", "ncnn")
FORMAT = {"onnxruntime": "onnx", "openvino": "openvino", "ncnn": "ncnn"}  # runtime -> ultralytics export format
TOOLS = ("onnxruntime", "onnx", "onnxslim", "openvino", "ncnn", "pnnx")
ANY_SIZE = "dense, any-size graph"  # the dense model exported with the graph that holds no traced size
INT8 = "openvino int8"  # the OpenVINO INT8 rows (--int8)
EXPORTED = "exported.json"  # in --keep: (runtime, size, label) -> file of each export, read back by --reuse
NNCF_DEFAULTS = "dense, NNCF defaults"  # the dense model quantized without this package's ignored scope
ADDS_ONLY = "dense, additions only"  # --int8-candidates: only the attention's additions in NNCF's ignored scope
WHOLE = "dense, quantized whole"  # --int8-candidates: none of it there, not even its sigmoids (ultralytics' scope)
AIMS_DENSE = {320: 0.15, 640: 0.10}  # size -> the dense placement's aim in ONNX Runtime and OpenVINO over plain
AIM_NECK_INT8 = 0.05  # the neck placement's aim in OpenVINO INT8 over plain INT8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolov5s", help="stock model name without .yaml (default yolov5s)")
    p.add_argument("--sizes", type=int, nargs="+", default=[320, 640], help="square input sizes (default 320 640)")
    p.add_argument("--rounds", type=int, default=30, help="interleaved rounds per runtime and size (default 30)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads of every runtime (default 2)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time each call by the wall clock (default) or by this process's CPU time")
    p.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES), help="default: all installed")
    p.add_argument("--profile", action="store_true", help="also print the per-operation breakdown")
    p.add_argument("--profile-runs", type=int, default=20, help="profiled inferences per model (default 20)")
    p.add_argument("--profile-stat", choices=("mean", "min"), default="mean",
                   help="each node's time over the profiled runs: mean (default), or min, the least of its times")
    p.add_argument("--keep", type=Path, default=None, help="write the exported files here and keep them")
    p.add_argument("--reuse", action="store_true",
                   help="time the files an earlier run with the same options wrote to --keep, without exporting")
    p.add_argument("--int8", action="store_true", help="also OpenVINO INT8 rows (NNCF), timed with the FP32 rows")
    p.add_argument("--int8-images", type=int, default=32, help="INT8 calibration images per size (default 32)")
    p.add_argument("--int8-candidates", action="store_true",
                   help=f"with --int8, also the other quantizations of dense: '{ADDS_ONLY}', '{WHOLE}'")
    args = p.parse_args(argv)
    if args.int8 and "openvino" not in args.runtimes:
        p.error("--int8 times OpenVINO INT8 models: --runtimes must include openvino")
    if args.int8_candidates and not args.int8:
        p.error("--int8-candidates needs --int8")
    if args.reuse and not (args.keep and (args.keep / EXPORTED).is_file()):
        p.error(f"--reuse times the files of an earlier --keep run: no {EXPORTED} in --keep {args.keep}")
    for name in ("rounds", "threads", "profile_runs", "int8_images"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if min(args.sizes) < 32 or any(s % 32 for s in args.sizes):
        p.error(f"--sizes must be multiples of 32, got {args.sizes}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # before torch is imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _checkout import use_checkout

    use_checkout(__file__, ARGS.threads)  # benchmark this checkout's package, on these threads
    # the package's timing core, shared with the study (and MIN_ROUND_MS, each variant's least time per round)
    from ultralytics_triplet.measure import interleaved, ort_session, ov_compiled


# --- the variants -----------------------------------------------------------------------------------------------
def variants(model: str) -> dict[str, str]:
    """Label -> config of the plain model, each named placement and the official-style dense model."""
    from ultralytics_triplet.placements import NAMES

    out = {"plain": f"{model}.yaml"}
    out.update({name: f"{model}-{name}.yaml" for name in NAMES})
    out["dense, official-style"] = f"{model}-{NAMES[-1]}.yaml"  # its TripletAttention rows swapped, see build()
    out[ANY_SIZE] = f"{model}-{NAMES[-1]}.yaml"  # exported with forward_export, see export_all()
    return out


def build(label: str, cfg: str):
    """The YOLO object of one variant (seed 0); the official-style one with ReferenceTriplet in the dense rows."""
    import torch
    from ultralytics import YOLO

    from ultralytics_triplet.nn import TripletAttention
    from ultralytics_triplet.reference import ReferenceTriplet

    torch.manual_seed(0)
    model = YOLO(cfg)
    if label.endswith("official-style"):
        layers = model.model.model
        for i, m in enumerate(layers):
            if isinstance(m, TripletAttention):
                ref = ReferenceTriplet(m.c1, m.no_spatial, m.kernel_size, official_max=True)  # the official max
                ref.load_state_dict(m.state_dict(), strict=True)  # the same weights, the official key layout
                for attr in ("i", "f", "type", "np"):  # ultralytics' routing attributes of a row
                    setattr(ref, attr, getattr(m, attr))
                layers[i] = ref
    return model


@contextlib.contextmanager
def quiet(log: Path):
    """Send this process's stdout and stderr (the exporters' C++ code prints there too) to ``log`` for the block.

    On an error the log is printed, so a failing export says why.
    """
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "w") as f:
        os.dup2(f.fileno(), 1), os.dup2(f.fileno(), 2)
    try:
        yield
    except BaseException:
        restore(saved)
        print(log.read_text()[-4000:], file=sys.stderr)
        raise
    restore(saved)


def restore(fds: list[int]) -> None:
    """Put the saved stdout and stderr file descriptors back."""
    sys.stdout.flush(), sys.stderr.flush()
    for target, fd in zip((1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)


@contextlib.contextmanager
def working_dir(path: Path):
    """Run the block in ``path`` (ultralytics writes a model built from a YAML into the working directory)."""
    path.mkdir(parents=True, exist_ok=True)
    before = Path.cwd()
    os.chdir(path)
    try:
        yield path
    finally:
        os.chdir(before)


@contextlib.contextmanager
def any_size_graph():
    """Within the block, every eval-mode trace of TripletAttention records ``forward_export``, the graph valid at every
    size, also where a static-shape ONNX or OpenVINO export would record its own."""
    from ultralytics_triplet.nn import TripletAttention

    chosen = TripletAttention._traced_formulation
    TripletAttention._traced_formulation = lambda self: "export" if chosen(self) != "plain" else "plain"
    try:
        yield
    finally:
        TripletAttention._traced_formulation = chosen


@contextlib.contextmanager
def nncf_defaults():
    """Within the block, ultralytics' OpenVINO export quantizes as it does without this package: its own
    ``Exporter.export_openvino``, which hands NNCF no ignored scope for TripletAttention."""
    from ultralytics.engine.exporter import Exporter

    from ultralytics_triplet._compat import original

    ours = Exporter.export_openvino
    Exporter.export_openvino = original(ours)
    try:
        yield
    finally:
        Exporter.export_openvino = ours


@contextlib.contextmanager
def rescoped(change):
    """Within the block, ultralytics' exporter quantizes as it is (``nncf_defaults``), with ``change(operations,
    scope)`` applied to the ignored scope it hands ``nncf.quantize`` (``operations``: the OpenVINO model's)."""
    import nncf

    quantize = nncf.quantize

    def wrapper(model, *args, ignored_scope=None, **kwargs):
        return quantize(model, *args, ignored_scope=change(model.get_ordered_ops(), ignored_scope), **kwargs)

    nncf.quantize = wrapper
    try:
        with nncf_defaults():
            yield
    finally:
        nncf.quantize = quantize


def additions_only(rows: list[int]):
    """Within the block, NNCF's ignored scope also holds the additions of the attention rows ``rows`` (the gates'
    average, which NNCF's FakeQuantize nodes split from the product), and nothing else of them."""
    import dataclasses

    import nncf

    def change(ops, scope):
        adds = [op.get_friendly_name() for op in ops if op.get_type_name() == "Add"
                and (m := ROW.search(op.get_friendly_name())) and int(m.group(1)) in rows]
        return nncf.IgnoredScope(names=adds) if scope is None else dataclasses.replace(scope, names=scope.names + adds)

    return rescoped(change)


def quantized_whole(rows: list[int]):
    """Within the block, NNCF quantizes the attention rows ``rows`` whole: the rows' sigmoids are taken out of the
    ignored scope ultralytics builds (which holds every sigmoid)."""
    import dataclasses

    def change(ops, scope):
        if scope is None:
            return None
        inside = {op.get_friendly_name() for op in ops if (m := ROW.search(op.get_friendly_name()))
                  and int(m.group(1)) in rows}
        names = [n for n in scope.names if n not in inside]
        if "Sigmoid" in scope.types:  # ultralytics 8.3 ignores sigmoids by type: name the others
            names += [op.get_friendly_name() for op in ops
                      if op.get_type_name() == "Sigmoid" and op.get_friendly_name() not in inside]
        return dataclasses.replace(scope, names=names, types=[t for t in scope.types if t != "Sigmoid"])

    return rescoped(change)


def int8_labels(labels: dict[str, str]) -> dict[str, str]:
    """Label -> config of the variants exported to INT8 (--int8): plain, the named placements, the dense model
    quantized with NNCF's defaults and, with --int8-candidates, the other quantizations of the dense model."""
    names = list(labels)
    others = (ADDS_ONLY, WHOLE) if ARGS.int8_candidates else ()
    return {**{k: labels[k] for k in names[:4]}, **{k: labels[names[3]] for k in (NNCF_DEFAULTS, *others)}}


def attention_rows(model) -> list[int]:
    """Indices of the TripletAttention rows of a YOLO object."""
    from ultralytics_triplet.nn import TripletAttention

    return [i for i, m in enumerate(model.model.model) if isinstance(m, TripletAttention)]


def export_int8(model, label: str, size: int, data: Path) -> Path:
    """The OpenVINO INT8 export of ``model`` at ``size``, NNCF calibrating on ``data``; returns its .xml."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    quantize = {"quantize": 8} if "quantize" in DEFAULT_CFG_DICT else {"int8": True}  # int8=True before 8.4
    scope = {NNCF_DEFAULTS: nncf_defaults, ADDS_ONLY: lambda: additions_only(attention_rows(model)),
             WHOLE: lambda: quantized_whole(attention_rows(model))}.get(label, contextlib.nullcontext)
    with scope():
        f = model.export(format="openvino", imgsz=size, device="cpu", data=str(data), **quantize)
    return next(Path(f).resolve().glob("*.xml"))


def export_all(labels: dict[str, str], sizes: list[int], runtimes: list[str], root: Path) -> dict:
    """Export every variant at every size for every runtime (and to OpenVINO INT8 with --int8); returns
    {(runtime, size, label): path}."""
    from ultralytics.utils import LOGGER

    from ultralytics_triplet._compat import no_autoinstall
    from ultralytics_triplet.data import make_shapes_dataset

    files, level = {}, LOGGER.level
    quantized = int8_labels(labels) if ARGS.int8 else {}
    LOGGER.setLevel(logging.WARNING)
    try:
        with no_autoinstall():
            for size in sizes:
                data = make_shapes_dataset(root / f"{size}" / "shapes", n_train=1, n_val=ARGS.int8_images,
                                           imgsz=size) if quantized else None
                for k, (label, cfg) in enumerate({**labels, **quantized}.items()):
                    model = build(label, cfg)
                    graph = any_size_graph() if label == ANY_SIZE else contextlib.nullcontext()
                    with working_dir(root / f"{size}" / f"v{k}") as d, quiet(d / "export.log"), graph:
                        for rt in runtimes if label in labels else ():
                            f = Path(model.export(format=FORMAT[rt], imgsz=size, device="cpu")).resolve()
                            files[rt, size, label] = next(f.glob("*.xml")) if rt == "openvino" else f
                        if label in quantized:
                            files[INT8, size, label] = export_int8(model, label, size, data)
                    print(f"  exported {label} at {size}", flush=True)
    finally:
        LOGGER.setLevel(level)
    return files


def reused(root: Path, labels: dict[str, str], runtimes: list[str]) -> dict:
    """The files an earlier ``--keep`` run exported ({(runtime, size, label): path}); exits naming what is missing."""
    files = {(rt, size, label): Path(f) for rt, size, label, f in json.loads((root / EXPORTED).read_text())}
    wanted = [(rt, size, k) for rt in runtimes for size in ARGS.sizes for k in labels]
    if ARGS.int8:
        wanted += [(INT8, size, k) for size in ARGS.sizes for k in int8_labels(labels)]
    missing = [key for key in wanted if key not in files or not files[key].exists()]
    if missing:
        sys.exit(f"bench_deploy: --reuse: {root} holds no export of {', '.join(map(str, missing[:3]))}"
                 f"{' ...' if len(missing) > 3 else ''}; run once with --keep and the same options")
    print(f"  reusing the exports in {root}", flush=True)
    return files


# --- runtimes ---------------------------------------------------------------------------------------------------
def image(size: int):
    """A fixed random input, (1, 3, size, size) float32 in [0, 1]."""
    import numpy as np

    return np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)


def ncnn_net(path: Path, threads: int):
    """An NCNN net on ``threads`` CPU threads, from an ultralytics ``_ncnn_model`` directory."""
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.opt.openmp_blocktime = 0  # no spinning after a layer: the next variant's threads would compete with it
    param = next(path.glob("*.param"))
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    return net


def runner(rt: str, path: Path, size: int, threads: int):
    """A function that runs one inference of the exported file ``path`` in runtime ``rt``."""
    x = image(size)
    if rt == "onnxruntime":
        session = ort_session(path, threads)
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)
    if rt == "openvino":
        request = ov_compiled(path, threads).create_infer_request()
        return lambda: request.infer({0: x})
    import ncnn

    net = ncnn_net(path, threads)
    mat, inp, outs = ncnn.Mat(x[0]), net.input_names()[0], sorted(net.output_names())

    def run():
        with net.create_extractor() as ex:
            ex.input(inp, mat)
            return [ex.extract(o)[1] for o in outs]

    return run


def node_count(rt: str, path: Path) -> int:
    """Operations in the exported graph: ONNX nodes, OpenVINO ops (no parameters, constants, results), NCNN layers."""
    if rt == "onnxruntime":
        import onnx

        return len(onnx.load(str(path), load_external_data=False).graph.node)
    if rt == "openvino":
        import openvino as ov

        skip = {"Parameter", "Constant", "Result"}
        return sum(op.get_type_name() not in skip for op in ov.Core().read_model(str(path)).get_ordered_ops())
    return int(next(path.glob("*.param")).read_text().splitlines()[1].split()[0])  # "layer_count blob_count"


def overheads(times: dict[str, list[float]], base: str = "plain") -> dict[str, tuple[float, float, float]]:
    """Median and quartiles over rounds of each variant's time / the base's in the same round, minus 1."""
    out = {}
    for k, ts in times.items():
        r = sorted(t / b - 1 for t, b in zip(ts, times[base]))
        q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0], r[0], r[0]]
        out[k] = (statistics.median(r), q[0], q[2])
    return out


# --- per-operation profiles -------------------------------------------------------------------------------------
ROW = re.compile(r"model\.(\d+)[./]")  # the model row a node belongs to, from its name: /model.3/Conv, model.3.cv1/...


def profile_nodes(rt: str, path: Path, size: int, threads: int, runs: int) -> list[tuple[str, str, float]]:
    """(node name, operation type, ms per inference) of every node the runtime's own profiler timed: the mean over the
    runs, or with ``--profile-stat min`` the least (what the node takes when nothing else on the machine interrupts
    it)."""
    x, nodes = image(size), defaultdict(list)
    if rt == "onnxruntime":
        with tempfile.TemporaryDirectory() as tmp:
            session = ort_session(path, threads, profile=str(Path(tmp) / "ort"))
            feed = {session.get_inputs()[0].name: x}
            for _ in range(runs + 3):
                session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
        for e in kernels[len(kernels) * 3 // (runs + 3):]:  # without the warm-up runs
            nodes[e["name"][: -len("_kernel_time")], e["args"]["op_name"]].append(e["dur"] / 1e3)
    elif rt == "openvino":
        request = ov_compiled(path, threads, perf=True).create_infer_request()
        for _ in range(3):
            request.infer({0: x})
        for _ in range(runs):
            request.infer({0: x})
            for p in request.profiling_info:
                if p.status.name == "EXECUTED":
                    nodes[p.node_name, p.node_type].append(p.real_time.total_seconds() * 1e3)
    stat = min if ARGS.profile_stat == "min" else (lambda ts: sum(ts) / runs)
    return [(name, op, stat(ts)) for (name, op), ts in nodes.items()]


def by_type(nodes: list[tuple[str, str, float]]) -> dict[str, tuple[float, int]]:
    """{operation type: (ms per inference, nodes)}."""
    out = defaultdict(lambda: [0.0, 0])
    for _, op, t in nodes:
        out[op][0] += t
        out[op][1] += 1
    return {op: (t, n) for op, (t, n) in out.items()}


def type_table(prof: dict[str, dict[str, tuple[float, int]]], title: str, diff: tuple[str, str] | None) -> list[str]:
    """Lines of a table of ms (nodes) per operation type, one column per model, sorted by the first column or diff."""
    cols = list(prof)
    ops = set().union(*prof.values())
    get = lambda k, op: prof[k].get(op, (0.0, 0))  # noqa: E731
    added = {op: get(diff[1], op)[0] - get(diff[0], op)[0] for op in ops} if diff else {}
    lines = ["", title, f"{'operation':<22}" + "".join(f" {k:>24}" for k in cols)
             + (f" {diff[1].split(',')[0] + ' - ' + diff[0]:>20}" if diff else "")]
    for op in sorted(ops, key=lambda o: -(added[o] if diff else get(cols[0], o)[0])):
        cells = "".join(f" {f'{get(k, op)[0]:8.3f} ({get(k, op)[1]:3d})':>24}" for k in cols)
        lines.append(f"{op:<22}{cells}" + (f" {added[op]:+20.3f}" if diff else ""))
    totals = {k: sum(t for t, _ in prof[k].values()) for k in cols}
    return lines + [f"{'total':<22}" + "".join(f" {totals[k]:24.3f}" for k in cols)
                    + (f" {totals[diff[1]] - totals[diff[0]]:+20.3f}" if diff else "")]


def fq_report(files: dict, rows: dict[str, list[int]], size: int) -> list[str]:
    """What NNCF quantized inside the attention rows of each INT8 graph (``rows``: label -> the rows' indices): the
    FakeQuantize nodes that feed an operation of those rows, by the operation they feed."""
    import openvino as ov

    lines = ["", f"FakeQuantize nodes feeding the TripletAttention rows (OpenVINO INT8, {size}), by the operation they "
             "feed"]
    for k, own in rows.items():
        fed = defaultdict(int)
        for op in ov.Core().read_model(str(files[INT8, size, k])).get_ordered_ops():
            if op.get_type_name() != "FakeQuantize":
                continue
            for target in op.output(0).get_target_inputs():
                node = target.get_node()
                if (m := ROW.search(node.get_friendly_name())) and int(m.group(1)) in own:
                    fed[node.get_type_name()] += 1
        lines.append(f"  {k:<22} {sum(fed.values()):4d}: " + ", ".join(f"{t} {n}" for t, n in sorted(fed.items())))
    return lines


def profile_int8(files: dict, rows: list[int], labels: list[str], sizes: list[int]) -> list[str]:
    """Per-operation time of plain INT8, dense INT8 and the other quantizations of dense (OpenVINO's performance
    counters, by the compiled graph's node types, fused nodes under their first operation), and the attention rows on
    their own."""
    plain, dense = labels[0], labels[3]
    others = [k for k in (NNCF_DEFAULTS, ADDS_ONLY, WHOLE) if k in labels]
    lines = []
    for size in sizes:
        nodes = {k: profile_nodes("openvino", files[INT8, size, k], size, ARGS.threads, ARGS.profile_runs)
                 for k in (plain, dense, *others)}
        runs = f"{ARGS.profile_stat} of {ARGS.profile_runs} profiled runs"
        lines += type_table({k: by_type(v) for k, v in nodes.items()},
                            f"{INT8} {size}: ms per inference by operation type (nodes), {runs}", (plain, dense))
        own = {f"{k} rows": by_type([n for n in nodes[k] if (m := ROW.search(n[0])) and int(m.group(1)) in rows])
               for k in (dense, *others)}
        lines += type_table(own, f"{INT8} {size}: the {len(rows)} TripletAttention rows alone, {runs}", None)
    return lines


def profile_report(files: dict, rows: list[int], labels: list[str], sizes: list[int], runtimes: list[str]
                   ) -> list[str]:
    """Per-operation time of plain, dense, official-style dense and the any-size graph of dense, what dense adds, and
    the attention rows of both dense graphs on their own (``rows``: their indices; nodes named after them, which
    includes the layout conversions OpenVINO inserts there; ONNX Runtime names its own conversions after no row, so
    they appear in the first table only)."""
    plain, dense, official = labels[0], labels[3], labels[4]
    lines = []
    for rt in runtimes:
        if rt == "ncnn":
            lines += ["", "NCNN: no per-operation profiler in its Python runtime; not profiled."]
            continue
        for size in sizes:
            nodes = {k: profile_nodes(rt, files[rt, size, k], size, ARGS.threads, ARGS.profile_runs)
                     for k in (plain, dense, official, ANY_SIZE)}
            runs = f"{ARGS.profile_stat} of {ARGS.profile_runs} profiled runs"
            lines += type_table({k: by_type(v) for k, v in nodes.items()},
                                f"{rt} {size}: ms per inference by operation type (nodes), {runs}", (plain, dense))
            own = {f"{k} rows": by_type([n for n in nodes[k] if (m := ROW.search(n[0])) and int(m.group(1)) in rows])
                   for k in (dense, ANY_SIZE)}
            lines += type_table(own, f"{rt} {size}: the {len(rows)} TripletAttention rows alone, {runs}", None)
    return lines


# --- the run ----------------------------------------------------------------------------------------------------
def installed(rt: str) -> bool:
    """Whether a runtime's Python package (and, for NCNN, its exporter pnnx) is importable."""
    mods = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino",), "ncnn": ("ncnn", "pnnx")}[rt]
    return all(importlib.util.find_spec(m) is not None for m in mods)


def versions() -> str:
    """Versions of the installed runtimes and export tools."""
    got = []
    for name in TOOLS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            got.append(f"{name} {importlib.metadata.version(name)}")
    return ", ".join(got)


def main() -> None:
    """Export, time, print."""
    from ultralytics_triplet import register
    from ultralytics_triplet.measure import machine

    register()  # the named placements resolve in this process, whatever the environment says
    t_start = time.perf_counter()
    runtimes = [rt for rt in ARGS.runtimes if installed(rt)]
    skipped = [rt for rt in ARGS.runtimes if rt not in runtimes]
    labels = variants(ARGS.model)
    print(f"Machine: {machine()}")
    print(f"Tools: {versions()}")
    print(f"Package: {Path(sys.modules['ultralytics_triplet'].__file__).parent}")
    print(f"Command: python {' '.join(sys.argv)}")
    clock = "wall time" if ARGS.clock == "wall" else "this process's CPU time"
    print(f"Batch 1, {ARGS.threads} threads, {clock}, median of {ARGS.rounds} interleaved rounds; overhead = time / "
          "plain - 1 (in brackets: the middle half of the rounds)")
    if skipped:
        print(f"Not installed, skipped: {', '.join(skipped)}")
    if not runtimes:
        sys.exit("bench_deploy: none of the runtimes is installed: " + ", ".join(ARGS.runtimes))
    with tempfile.TemporaryDirectory() as tmp:
        root = ARGS.keep.resolve() if ARGS.keep else Path(tmp)
        formats = ", ".join(FORMAT[r] for r in runtimes)
        if not ARGS.reuse:
            print(f"\nExporting {len(labels)} variants of {ARGS.model} at {ARGS.sizes} to {formats}")
        files = reused(root, labels, runtimes) if ARGS.reuse else export_all(labels, ARGS.sizes, runtimes, root)
        if ARGS.keep:
            (root / EXPORTED).write_text(json.dumps([[*key, str(f)] for key, f in files.items()], indent=1))
        quantized = int8_labels(labels) if ARGS.int8 else {}
        rows = []
        for rt in runtimes:
            for size in ARGS.sizes:
                fns = {k: runner(rt, files[rt, size, k], size, ARGS.threads) for k in labels}
                if rt == "openvino":  # INT8 in the same rounds as FP32
                    fns.update({f"{INT8}: {k}": runner(rt, files[INT8, size, k], size, ARGS.threads)
                                for k in quantized})
                clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
                times = interleaved(fns, ARGS.rounds, clock=clock)
                for row, names in ((rt, {k: k for k in labels}), (INT8, {f"{INT8}: {k}": k for k in quantized})):
                    if names:
                        own = {k: times[key] for key, k in names.items()}
                        rows.append((row, size, own, overheads(own)))
                print(f"  timed {rt} at {size}", flush=True)
        counts = {(rt, k): node_count(rt, files[rt, ARGS.sizes[0], k]) for rt in runtimes for k in labels}
        counts.update({(INT8, k): node_count("openvino", files[INT8, ARGS.sizes[0], k]) for k in quantized})
        own = {k: attention_rows(build(k, cfg)) for k, cfg in {**labels, **quantized}.items() if k != "plain"}
        attention = own[list(labels)[3]]
        print()
        print("\n".join(report(rows, counts, labels, runtimes + ([INT8] if quantized else []))))
        if quantized:
            print("\n".join(fq_report(files, {k: own[k] for k in quantized if k != "plain"}, ARGS.sizes[0])))
        if ARGS.profile:
            print("\n".join(profile_report(files, attention, list(labels), ARGS.sizes, runtimes)))
            if quantized:
                print("\n".join(profile_int8(files, attention, list(quantized), ARGS.sizes)))
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")


def report(rows: list, counts: dict, labels: dict, runtimes: list[str]) -> list[str]:
    """The overhead table, the node counts and where the dense placement stands against its aims (an INT8 row: over
    plain INT8, with the dense model quantized with NNCF's defaults beside it and the FP32 row of the same rounds)."""
    names = list(labels)
    head = f"{'runtime':<13} {'size':>4} {'plain ms':>9}" + "".join(f" {k:>26}" for k in names[1:])
    lines = ["Overhead over plain " + ARGS.model + " (openvino int8: over plain INT8)", head]
    verdicts = []
    fp32 = {size: (times, over) for rt, size, times, over in rows if rt == "openvino"}
    for rt, size, times, over in rows:
        cells = "".join(f" {f'{100 * over[k][0]:+.1f}% ({100 * over[k][1]:+.1f} to {100 * over[k][2]:+.1f})':>26}"
                        if k in over else f" {'-':>26}" for k in names[1:])
        lines.append(f"{rt:<13} {size:>4} {statistics.median(times['plain']):9.2f}{cells}")
        dense = over[names[3]][0]
        aim = AIMS_DENSE.get(size)
        if rt in ("onnxruntime", "openvino", INT8) and aim is not None:
            verdicts.append(f"  {rt} {size}: dense {100 * dense:+.1f}% (aim <= +{100 * aim:.0f}%: "
                            f"{'met' if dense <= aim else 'missed'})")
        if rt == INT8:
            neck = over[names[2]][0]
            fp32_times, fp32_over = fp32[size]
            speedup = statistics.median(f / q for f, q in zip(fp32_times["plain"], times["plain"]))
            verdicts += [
                f"  {rt} {size}: neck {100 * neck:+.1f}% (aim <= +{100 * AIM_NECK_INT8:.0f}%: "
                f"{'met' if neck <= AIM_NECK_INT8 else 'missed'})",
                f"  {rt} {size}: dense {100 * dense:+.1f}% vs FP32 dense {100 * fp32_over[names[3]][0]:+.1f}% in the "
                f"same rounds; neck {100 * neck:+.1f}% vs FP32 {100 * fp32_over[names[2]][0]:+.1f}%",
                *(f"  {rt} {size}: dense {100 * dense:+.1f}% vs {k} {100 * over[k][0]:+.1f}% "
                  f"({100 * over[k][1]:+.1f} to {100 * over[k][2]:+.1f})"
                  for k in (NNCF_DEFAULTS, ADDS_ONLY, WHOLE) if k in over),
                f"  {rt} {size}: plain INT8 runs {speedup:.2f}x as fast as plain FP32 (median over rounds)"]
            continue
        official, any_size = (over[names[i]][0] for i in (4, 5))
        if rt in ("onnxruntime", "openvino"):
            verdicts.append(f"  {rt} {size}: dense {100 * dense:+.1f}% vs its any-size graph {100 * any_size:+.1f}%")
        verdicts.append(f"  {rt} {size}: dense {100 * dense:+.1f}% vs official-style {100 * official:+.1f}% "
                        f"({'not above' if dense <= official else 'above'} it)")
    lines += ["", f"Graph size (operations; at {ARGS.sizes[0]}): ONNX nodes, OpenVINO ops, NCNN layers",
              f"{'runtime':<13}" + "".join(f" {k:>22}" for k in labels)]
    for rt in runtimes:
        lines.append(f"{rt:<13}" + "".join(f" {counts.get((rt, k), '-'):>22}" for k in labels))
    for k in (NNCF_DEFAULTS, ADDS_ONLY, WHOLE):
        if (INT8, k) in counts:
            lines.append(f"{INT8 + ', ' + k:<42} {counts[INT8, k]}")
    return lines + ["", "Dense placement against its aims:", *verdicts]


if __name__ == "__main__":
    main()
