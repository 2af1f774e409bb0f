"""TripletAttention on a GPU in one run: speed and memory against the official module, which formulation runs, whether
every formulation matches the plain one there, and whole yolov5s networks, each figure a ratio measured side by side.

Usage:
    python benchmarks/bench_gpu.py                           # on the GPU (--device cuda); a few minutes
    python benchmarks/bench_gpu.py --compile                 # and the same under torch.compile, beside eager
    python benchmarks/bench_gpu.py --device cpu --quick      # the same code on the CPU, tiny inputs (a test runs it)
    python benchmarks/bench_gpu.py --out /tmp/gpu.json       # results as JSON (and the printed text beside it, .txt)

Sections, in the order printed:

1. Which formulation runs: ``TripletAttention.formulation(x)`` asked in each context (float32 inference and training,
   autocast bf16 and fp16, a float16 or bfloat16 module as ultralytics' ``half`` validation makes it) on each map.
2. Every formulation against ``forward_plain`` on the device: output, input and parameter gradients and BatchNorm
   buffers, in every (training, gradients) mode the formulation table (``formulation.FORMULATIONS``) lists, in float64,
   float32 (TF32 off: the check of the arithmetic), float16 and bfloat16 modules, and under autocast bf16 and fp16 (the
   ``autocast`` formulation, the one every call under autocast runs). An error is max |a - b| / (|b| + max|b| / 10), the
   measure of the unit tests' ``close_at_scale``. In float64 and float32 it is taken against ``forward_plain`` in the
   same precision (tolerances 1e-10 and 1e-4); in the low precisions against ``forward_plain`` in float64, and a
   formulation matches when no tensor's error exceeds twice the plain formulation's own in that precision (plus 4 unit
   roundoffs). A formulation that raises is reported with its error, not counted as a mismatch.
3. The module against the official-style one (``reference.ReferenceTriplet`` with the official ``torch.max``) on the
   benchmark maps, batch 8: inference (eval, ``inference_mode``) and a training step (forward + backward), in float32
   and under autocast bf16 and fp16; speed-up = official time / ours, per round, median (min-max) over rounds; the
   bytes autograd keeps for backward (``saved_tensors_hooks``, each storage once, the input's excluded) and, on CUDA,
   the peak memory of a training step above what was allocated before it (``torch.cuda.max_memory_allocated``).
4. Whole networks: yolov5s, yolov5s-triplet-neck (3 modules) and yolov5s-triplet-dense (8), built by name through
   ultralytics: an AMP training step (autocast fp16 with a GradScaler and an SGD step on CUDA, autocast bf16 without
   scaling on the CPU; imgsz 640, batch 16) and fused inference (``model.fuse()``, eval, batch 1, float32 and on CUDA
   float16), each network's time over plain yolov5s's in the same round, and the formulations its modules ran.

``--compile`` adds, in sections 3 and 4, each module and network under ``torch.compile`` (``dynamic=False``) timed in
the same rounds as eager: compiled official / compiled ours, eager / compiled, and dynamo's graph breaks. Each compiled
case compiles on its first call, before the timed rounds.

Timing: ``ultralytics_triplet.measure.interleaved`` runs each function in turn, round by round, so the machine's drifts
hit all of them alike; on CUDA every call ends with ``torch.cuda.synchronize()``, so a call's time is from its launch to
the GPU finishing it. cuDNN's settings are left as torch sets them (printed).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

T_START = time.perf_counter()  # the run's seconds count imports and model builds too
NETWORKS = ("yolov5s", "yolov5s-triplet-neck", "yolov5s-triplet-dense")
PRECISIONS = ("float32", "bf16", "fp16")  # of the module timing: no autocast, autocast bfloat16, autocast float16
QUICK_MAPS = [(32, 24, 24), (64, 8, 8)]  # --quick: one map for the fused/no_grad formulations on the CPU, one small
MATCH_SHAPES = [(2, 8, 10, 12), (1, 4, 33, 34)]  # odd sides; the second over 32x32 (zpool_maps pools it from x)
MATCH_PRECISIONS = ("float64", "float32", "float16", "bfloat16", "autocast bf16", "autocast fp16")
TOLERANCES = {"float64": 1e-10, "float32": 1e-4}  # the largest error against forward_plain that counts as a match
LOW = {"float16": 2**-11, "bfloat16": 2**-8, "autocast bf16": 2**-8, "autocast fp16": 2**-11}  # unit roundoff
LOW_FACTOR, LOW_ROUNDOFFS = 2.0, 4  # low precision: each tensor's error at most 2 x plain's + 4 unit roundoffs


def parse_args() -> argparse.Namespace:
    """Command-line options; one-line errors for values that cannot work."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--quick", action="store_true", help="tiny maps and networks, few rounds: checks that it runs")
    p.add_argument("--compile", action="store_true", help="also time the modules and networks under torch.compile")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (default inductor)")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default benchmarks/results-gpu-<device>.json); the text goes beside it, .txt")
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help=f"module timing precisions, comma-separated, of {', '.join(PRECISIONS)}")
    p.add_argument("--batch", type=int, default=None, help="batch of the module maps (default 8, quick 2)")
    p.add_argument("--imgsz", type=int, default=None, help="network image size (default 640, quick 64)")
    p.add_argument("--train-batch", type=int, default=None, help="network training batch (default 16, quick 2)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds per module case (default 21, quick 3)")
    p.add_argument("--net-rounds", type=int, default=None,
                   help="timed rounds per network context (default 15, quick 2)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads, also OMP/MKL_NUM_THREADS (default 2, quick 1: on a busy machine a "
                   "second thread waits more than it works)")
    for section in ("match", "maps", "networks"):
        p.add_argument(f"--skip-{section}", action="store_true", help=f"leave out the {section} section")
    args = p.parse_args()
    args.precisions = [s.strip() for s in args.precisions.split(",") if s.strip()]
    unknown = [s for s in args.precisions if s not in PRECISIONS]
    if unknown or not args.precisions:
        p.error(f"--precisions takes a comma-separated list of {', '.join(PRECISIONS)}, got {unknown or 'none'}")
    if not (args.device == "cpu" or args.device == "cuda" or args.device.startswith("cuda:")):
        p.error(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.imgsz is not None and args.imgsz % 32:
        p.error(f"--imgsz must be a multiple of 32, got {args.imgsz}")
    defaults = {"threads": (2, 1), "batch": (8, 2), "imgsz": (640, 64), "train_batch": (16, 2), "rounds": (21, 3),
                "net_rounds": (15, 2)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


ARGS = parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkout import ROOT, use_checkout  # noqa: E402

use_checkout(__file__, ARGS.threads)  # benchmark this checkout's package, on these threads

import torch  # noqa: E402
from _common import MAPS, OfficialTriplet, flat, geomean, saved_bytes  # noqa: E402

from ultralytics_triplet import measure  # noqa: E402
from ultralytics_triplet.formulation import FORMULATIONS  # noqa: E402
from ultralytics_triplet.nn import TripletAttention  # noqa: E402

torch.set_num_threads(ARGS.threads)
DEV = torch.device(ARGS.device)
if DEV.type == "cuda":
    if not torch.cuda.is_available():
        sys.exit(f"bench_gpu: --device {ARGS.device}, but torch {torch.__version__} (built for CUDA "
                 f"{torch.version.cuda}) sees no CUDA device; run with --device cpu --quick to check the script here")
    if DEV.index is not None:  # cuda:N; plain cuda is the current device (set_device wants an index)
        torch.cuda.set_device(DEV)
SYNC = torch.cuda.synchronize if DEV.type == "cuda" else (lambda: None)
AUTOCAST = {"float32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_ROUND_MS = 0.0 if ARGS.quick else measure.MIN_ROUND_MS  # quick: one call per function and round
WARMUP = 1 if ARGS.quick else 3


# --- output ---------------------------------------------------------------------------------------------------------
class Report:
    """Printed lines, kept for the text file, and the results for the JSON file."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.results: dict = {}

    def say(self, *lines: str) -> None:
        """Print ``lines`` at once and keep them."""
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)


REPORT = Report()


def per_round(times: dict[str, list[float]], num: str, den: str) -> dict[str, float]:
    """``num``'s time over ``den``'s in each round: median, min and max over the rounds."""
    r = [a / b for a, b in zip(times[num], times[den])]
    return {"median": statistics.median(r), "min": min(r), "max": max(r)}


def fmt_ratio(r: dict[str, float] | None) -> str:
    """'1.23x (1.10-1.31)', or a dash when there is no ratio."""
    return "-" if r is None else f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"


def short_error(e: BaseException) -> str:
    """The exception's type and the first line of its message, at most 160 characters."""
    text = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
    return text if len(text) <= 160 else text[:157] + "..."


# --- devices, precisions, compilation -------------------------------------------------------------------------------
def amp(precision: str | None):
    """Autocast to the precision's dtype on the benchmark's device, or nothing for float32 (or None)."""
    dtype = AUTOCAST.get(precision) if precision else None
    return torch.autocast(DEV.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


@contextlib.contextmanager
def without_tf32():
    """float32 convolutions and matmuls in full float32 on CUDA for the block (torch lets cuDNN use TF32 by default)."""
    if DEV.type != "cuda":
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flags' newer spelling exists from torch 2.9; these still work there
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def prepare_compile() -> None:
    """Check the backend's name; let dynamo keep a graph per case (shapes, dtypes, modes) instead of falling back to
    eager after 8 of them."""
    from torch import _dynamo

    backends = _dynamo.list_backends(exclude_tags=())
    if ARGS.compile_backend not in backends:
        sys.exit(f"bench_gpu: --compile-backend must be one of torch's backends ({', '.join(backends)}), got "
                 f"{ARGS.compile_backend!r}")

    for name, value in (("recompile_limit", 64), ("cache_size_limit", 64), ("accumulated_recompile_limit", 1024),
                        ("accumulated_cache_size_limit", 1024)):
        if hasattr(_dynamo.config, name):
            setattr(_dynamo.config, name, max(getattr(_dynamo.config, name), value))


def graph_breaks() -> int:
    """Graph breaks dynamo has counted since its last reset."""
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


def compiled_variants(fns: dict) -> tuple[dict, dict]:
    """Call each compiled function of ``fns`` (label -> function) once, which compiles it.

    Returns the functions that compiled, and for each label the seconds of its first call and dynamo's graph breaks, or
    the error it raised: a case that fails to compile is reported and left out, and the eager timings still run.
    """
    from torch._dynamo.utils import counters

    ok, info = {}, {}
    for label, f in fns.items():
        counters.clear()
        t0 = time.perf_counter()
        try:
            f()
        except Exception as e:  # a compiler failure is a result to report, not a reason to lose the run
            REPORT.say(f"   {label}: torch.compile failed: {short_error(e)}")
            info[label] = {"error": short_error(e)}
            continue
        ok[label] = f
        info[label] = {"first_call_s": time.perf_counter() - t0, "graph_breaks": graph_breaks()}
    return ok, info


def fmt_compile(info: dict, labels: list[str]) -> str:
    """'graph breaks 0 / 0, first calls 12.1 / 9.8 s' for the compiled ``labels`` (in that order)."""
    done = [info[k] for k in labels if k in info and "error" not in info[k]]
    if not done:
        return "not compiled"
    breaks = " / ".join(str(i["graph_breaks"]) for i in done)
    return f"graph breaks {breaks}, first calls {' / '.join(format(i['first_call_s'], '.1f') for i in done)} s"


def compile_module(m: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` with static shapes on the chosen backend."""
    return torch.compile(m, dynamic=False, backend=ARGS.compile_backend)


# --- 0: the machine -------------------------------------------------------------------------------------------------
def describe() -> dict:
    """Device, software and the settings that change what cuDNN runs."""
    import ultralytics

    info = {
        "device": str(DEV),
        "device_name": torch.cuda.get_device_name(DEV) if DEV.type == "cuda" else measure.cpu_name(),
        "host_cpu": measure.cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,  # the CUDA torch was built for (None: a CPU build)
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "ultralytics": ultralytics.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "package": str(Path(sys.modules["ultralytics_triplet"].__file__).parent),
    }
    if DEV.type == "cuda":
        props = torch.cuda.get_device_properties(DEV)
        info.update(capability=f"{props.major}.{props.minor}", memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn_tf32=torch.backends.cudnn.allow_tf32, matmul_tf32=torch.backends.cuda.matmul.allow_tf32,
                    cudnn_benchmark=torch.backends.cudnn.benchmark)
    return info


def report_machine(info: dict) -> None:
    """Print what ran where."""
    if DEV.type == "cuda":
        device = (f"{info['device_name']} ({info['device']}), compute capability {info['capability']}, "
                  f"{info['memory_gib']} GiB; host {info['host_cpu']}, {info['cpu_cores']} cores")
        settings = (f"cuDNN TF32 {'on' if info['cudnn_tf32'] else 'off'}, matmul TF32 "
                    f"{'on' if info['matmul_tf32'] else 'off'}, cudnn.benchmark {info['cudnn_benchmark']}")
    else:
        device = f"cpu: {info['device_name']}, {info['cpu_cores']} cores, torch threads {info['torch_threads']}"
        settings = f"cpu capability {torch.backends.cpu.get_cpu_capability()}"
    REPORT.say(
        f"Device: {device}",
        f"Software: torch {info['torch']}, CUDA {info['cuda']} (torch.version.cuda), cuDNN {info['cudnn']}, "
        f"ultralytics {info['ultralytics']}, Python {info['python']}; {settings}",
        f"Package: {info['package']}",
        f"Command: python {' '.join(sys.argv)}",
        "Timing: functions interleaved round by round (measure.interleaved)"
        + ("; each call ends with torch.cuda.synchronize()" if DEV.type == "cuda" else "")
        + "; a ratio is taken in each round, then its median (min-max) over the rounds",
    )


# --- 1: which formulation runs --------------------------------------------------------------------------------------
CONTEXTS = (  # label, autocast precision, module dtype, training, gradients on
    ("float32, eval, no grad", None, torch.float32, False, False),
    ("float32, training", None, torch.float32, True, True),
    ("autocast bf16, eval, no grad", "bf16", torch.float32, False, False),
    ("autocast bf16, training", "bf16", torch.float32, True, True),
    ("autocast fp16, eval, no grad", "fp16", torch.float32, False, False),
    ("autocast fp16, training", "fp16", torch.float32, True, True),
    ("float16 module, eval, no grad", None, torch.float16, False, False),
    ("bfloat16 module, eval, no grad", None, torch.bfloat16, False, False),
)


def which_formulation(maps: list[tuple]) -> list[dict]:
    """``TripletAttention.formulation(x)`` in each context of ``CONTEXTS`` on each map, batch ``--batch``."""
    rows = []
    for label, precision, dtype, training, grad in CONTEXTS:
        names = []
        for shape in maps:
            m = TripletAttention().to(DEV, dtype).train(training)
            x = torch.randn(ARGS.batch, *shape, device=DEV, dtype=dtype)
            with amp(precision), torch.set_grad_enabled(grad):
                names.append(m.formulation(x))
        rows.append({"context": label, "formulations": names})
    heads = ["x".join(map(str, s)) for s in maps]
    REPORT.say(f"1. Which formulation runs on {DEV}: TripletAttention.formulation(x), batch {ARGS.batch}", "",
               f"{'context':<32}" + "".join(f" {h:>12}" for h in heads))
    for row in rows:
        REPORT.say(f"{row['context']:<32}" + "".join(f" {n:>12}" for n in row["formulations"]))
    return rows


# --- 2: every formulation against forward_plain ---------------------------------------------------------------------
def twins(no_spatial: bool, dtype: torch.dtype) -> tuple[TripletAttention, TripletAttention]:
    """Two modules with the same random weights and BatchNorm statistics (so folding BatchNorm is no identity)."""
    torch.manual_seed(0)
    m = TripletAttention(no_spatial=no_spatial)
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t))
    m = m.to(DEV, dtype)
    return m, copy.deepcopy(m)


def outputs(m: TripletAttention, name: str, x: torch.Tensor, w: torch.Tensor, grad: bool,
            precision: str | None) -> dict[str, torch.Tensor]:
    """``forward_<name>`` and, with ``grad``, the backward of ``(y * w).sum()``: output, gradients, buffers."""
    x = x.clone().requires_grad_(grad)
    with amp(precision), torch.set_grad_enabled(grad):
        y = getattr(m, f"forward_{name}")(x)
    if grad:
        (y * w.to(y.dtype)).sum().backward()
    out = {"y": y.detach(), **{f"buffer {n}": b.clone() for n, b in m.named_buffers() if b.is_floating_point()}}
    if grad:
        out["x.grad"] = x.grad
        out.update({f"grad {n}": p.grad for n, p in m.named_parameters()})
    return out


def scaled_error(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    """max |a - b| / (|b| + max|b| / 10), in float64; inf where one is missing or the shapes differ."""
    if a is None or b is None or a.shape != b.shape:
        return 0.0 if a is None and b is None else float("inf")
    a, b = a.detach().double(), b.detach().double()
    scale = b.abs().max() if b.numel() else torch.zeros((), dtype=torch.float64, device=b.device)
    denom = (b.abs() + scale / 10).clamp_min(torch.finfo(torch.float64).tiny)
    err = ((a - b).abs() / denom).nan_to_num(nan=float("inf"))
    return float(err.max()) if err.numel() else 0.0


def check(formulation, precision: str) -> dict:
    """One formulation against ``forward_plain`` in one precision, every mode it serves, both gate settings.

    float64 and float32: its error against ``forward_plain`` in the same precision, within ``TOLERANCES``. The low
    precisions: its error against ``forward_plain`` in float64 on the same (rounded) weights and inputs, tensor by
    tensor (the largest over the cases) at most ``LOW_FACTOR`` times the largest error of ``forward_plain`` in that
    precision plus ``LOW_ROUNDOFFS`` unit roundoffs: as accurate as the plain formulation, whose rounding sets the bar.
    """
    autocast = precision in AUTOCAST_OF
    if autocast and formulation.name not in ("autocast", "plain"):
        return {"status": "not run", "why": "every call under autocast runs the autocast formulation"}
    dtype = torch.float32 if autocast else getattr(torch, precision)
    errors: dict[str, list[float]] = {}  # tensor -> [largest error, plain's largest, where the first was]
    for shape in MATCH_SHAPES:
        for no_spatial in (False, True):
            for training, grad in formulation.modes:
                torch.manual_seed(1)
                x = torch.randn(shape, dtype=dtype).to(DEV)
                w = torch.randn(shape, dtype=dtype).to(DEV)
                m, plain = twins(no_spatial, dtype)
                m.train(training), plain.train(training)
                exact = copy.deepcopy(plain).double() if precision in LOW else None
                try:
                    want = outputs(plain, "plain", x, w, grad, AUTOCAST_OF.get(precision))
                    ref = want if exact is None else outputs(exact, "plain", x.double(), w.double(), grad, None)
                except Exception as e:
                    return {"status": "cannot run", "why": f"forward_plain itself: {short_error(e)}"}
                try:
                    got = outputs(m, formulation.name, x, w, grad, AUTOCAST_OF.get(precision))
                except Exception as e:
                    return {"status": "cannot run", "why": short_error(e)}
                case = f"{'x'.join(map(str, shape))}, no_spatial={no_spatial}, training={training}, grad={grad}"
                for key in ref.keys() | got.keys():
                    e = scaled_error(got.get(key), ref.get(key))
                    e_plain = scaled_error(want.get(key), ref.get(key)) if exact is not None else 0.0
                    seen = errors.setdefault(key, [0.0, 0.0, ""])
                    if not e <= seen[0]:
                        seen[0], seen[2] = e, case
                    seen[1] = max(seen[1], e_plain)
    result = {"status": "match", "error": max(v[0] for v in errors.values()),
              "plain_error": max(v[1] for v in errors.values()), "per_tensor": errors}
    for key, (e, e_plain, case) in sorted(errors.items()):
        bound = TOLERANCES[precision] if precision not in LOW else LOW_FACTOR * e_plain + LOW_ROUNDOFFS * LOW[precision]
        if not e <= bound:
            result.update(status="differs", bad=f"{key}: error {e:.2e} > {bound:.2e} (largest at {case})")
            break
    return result


AUTOCAST_OF = {"autocast bf16": "bf16", "autocast fp16": "fp16"}  # match precision -> autocast precision


def match_all(chosen: list[dict]) -> dict:
    """Every formulation in every precision of ``MATCH_PRECISIONS``; printed as a table with a legend."""
    t0 = time.perf_counter()
    with without_tf32():
        results = {f.name: {p: check(f, p) for p in MATCH_PRECISIONS} for f in FORMULATIONS}
    ran_here = sorted({n for row in chosen for n in row["formulations"]})
    shapes = ", ".join("x".join(map(str, s)) for s in MATCH_SHAPES)
    REPORT.say(
        "", f"2. Every formulation against forward_plain on {DEV}: output, input and parameter gradients, BatchNorm "
        f"buffers, in each (training, grad) mode the table lists; shapes {shapes}, with and without the spatial gate",
        "   error = max |a - b| / (|b| + max|b| / 10) over those tensors (the unit tests' measure)",
        "   float64, float32 (TF32 off): error against forward_plain in the same precision; 'ok' up to "
        + " and ".join(f"{t:g} ({p})" for p, t in TOLERANCES.items()),
        "   float16, bfloat16 (the module cast), autocast: error against forward_plain in float64 on the same rounded "
        f"weights and inputs; 'ok' when each tensor's (largest over the cases) is at most {LOW_FACTOR:g} x "
        f"forward_plain's own in that precision (row 'plain') + {LOW_ROUNDOFFS} unit roundoffs",
        "   'DIFFERS': above that; 'cannot run': it raised; '-': not run (under autocast every call runs the autocast "
        "formulation); 'runs here': named in section 1", "",
        f"{'formulation':<16} {'runs here':>9}" + "".join(f" {p:>14}" for p in MATCH_PRECISIONS),
    )
    notes = []
    for name, row in results.items():
        cells = []
        for p in MATCH_PRECISIONS:
            r = row[p]
            if r["status"] == "match":
                cells.append(f"ok {r['error']:.0e}")
            elif r["status"] == "differs":
                cells.append(f"DIFFERS {r['error']:.0e}")
                notes.append(f"   {name}, {p}: {r['bad']}")
            elif r["status"] == "cannot run":
                cells.append("cannot run")
                notes.append(f"   {name}, {p}: {r['why']}")
            else:
                cells.append("-")
        REPORT.say(f"{name:<16} {'yes' if name in ran_here else 'no':>9}" + "".join(f" {c:>14}" for c in cells))
    statuses = {s: [n for n, row in results.items() if any(r["status"] == s for r in row.values())]
                for s in ("differs", "cannot run")}
    everywhere = [n for n, row in results.items() if all(r["status"] in ("match", "not run") for r in row.values())]
    REPORT.say(*notes, f"   matches in every precision: {', '.join(everywhere) or 'none'}; differs somewhere: "
               f"{', '.join(statuses['differs']) or 'none'}; cannot run somewhere: "
               f"{', '.join(statuses['cannot run']) or 'none'} ({time.perf_counter() - t0:.0f} s)")
    return {"tolerances": TOLERANCES, "unit_roundoff": LOW, "low_rule": [LOW_FACTOR, LOW_ROUNDOFFS],
            "shapes": MATCH_SHAPES, "runs_here": ran_here, "results": results}


# --- 3: the module against the official-style one -------------------------------------------------------------------
def peak_bytes(step) -> int | None:
    """On CUDA, the peak memory ``step()`` allocates above what was allocated before it; None elsewhere."""
    if DEV.type != "cuda":
        return None
    SYNC()
    torch.cuda.reset_peak_memory_stats(DEV)
    base = torch.cuda.memory_allocated(DEV)
    step()
    SYNC()
    return torch.cuda.max_memory_allocated(DEV) - base


def bench_map(shape: tuple, precision: str) -> dict:
    """Official-style vs ours (and, with --compile, both compiled) on one map in one precision, interleaved."""
    torch.manual_seed(0)
    mods = {"official": OfficialTriplet().to(DEV), "ours": TripletAttention().to(DEV)}
    mods["ours"].load_state_dict(mods["official"].state_dict(), strict=True)
    x = torch.randn(ARGS.batch, *shape, device=DEV)
    grad = torch.randn_like(x)

    def infer(m):
        def f():
            m.eval()
            with torch.inference_mode(), amp(precision):
                m(x)
            SYNC()

        return f

    def train(m, xi):
        def f():
            m.train()
            xi.grad = None
            m.zero_grad(set_to_none=True)
            with amp(precision):
                y = m(xi)
            y.backward(grad.to(y.dtype))
            SYNC()

        return f

    fns, inputs, compile_info = {}, {}, {}
    for label, m in mods.items():
        inputs[label] = x.clone().requires_grad_()
        fns[f"inference {label}"], fns[f"training {label}"] = infer(m), train(m, inputs[label])
    if ARGS.compile:
        from torch import _dynamo

        _dynamo.reset()
        compiled = {}
        for label, m in mods.items():
            c, xi = compile_module(m), x.clone().requires_grad_()
            compiled[f"inference {label} compiled"], compiled[f"training {label} compiled"] = infer(c), train(c, xi)
        ok, compile_info = compiled_variants(compiled)
        fns.update(ok)
    formulation = {}
    for label, training, grad_on in (("inference", False, False), ("training", True, True)):
        m = mods["ours"].train(training)
        with amp(precision), torch.set_grad_enabled(grad_on):
            formulation[label] = m.formulation(x)
    times = measure.interleaved(fns, ARGS.rounds, min_round_ms=MIN_ROUND_MS, warmup=WARMUP)
    ratios = {}
    for p in ("inference", "training"):
        r = ratios[p] = {"official / ours": per_round(times, f"{p} official", f"{p} ours")}
        if f"{p} ours compiled" in times and f"{p} official compiled" in times:
            r["compiled official / ours"] = per_round(times, f"{p} official compiled", f"{p} ours compiled")
        for label in mods:
            if f"{p} {label} compiled" in times:
                r[f"{label} eager / compiled"] = per_round(times, f"{p} {label}", f"{p} {label} compiled")
    memory = {}
    for label, m in mods.items():
        m.train()
        with amp(precision):
            memory[f"saved {label}"] = saved_bytes(m, inputs[label])
        memory[f"peak {label}"] = peak_bytes(fns[f"training {label}"])
        if f"training {label} compiled" in fns:
            memory[f"peak {label} compiled"] = peak_bytes(fns[f"training {label} compiled"])
    return {"map": shape, "batch": ARGS.batch, "precision": precision, "formulation": formulation,
            "times_ms": times, "ratios": ratios, "memory_bytes": memory, "compile": compile_info}


def mb(n: int | None) -> str:
    """Bytes as MB with two decimals, or a dash."""
    return "-" if n is None else f"{n / 2**20:.2f}"


def report_maps(rows: list[dict]) -> dict:
    """Print the module rows and the geometric means per precision and pass."""
    med = statistics.median
    REPORT.say(
        "", f"3. The module against the official-style one on {DEV}: batch {ARGS.batch}, {ARGS.rounds} rounds; ms per "
        "call (median); speed-up = official / ours per round, median (min-max); memory of a training step in MB: "
        "'saved' = kept by autograd for backward (saved_tensors_hooks), 'peak' = peak above what was allocated "
        "before (CUDA only)", "",
        f"{'map CxHxW':<11} {'precision':<9} {'pass':<9} {'ran':<9} {'official':>9} {'ours':>9} "
        f"{'speed-up':>22} {'saved off/ours':>17} {'ratio':>6} {'peak off/ours':>17} {'ratio':>6}",
    )
    for r in rows:
        t, mem, name = r["times_ms"], r["memory_bytes"], "x".join(map(str, r["map"]))
        for p in ("inference", "training"):
            memory = ""
            if p == "training":
                so, su, po, pu = (mem[k] for k in ("saved official", "saved ours", "peak official", "peak ours"))
                memory = (f" {mb(so) + '/' + mb(su):>17} {su / so if so else float('nan'):6.3f} "
                          f"{mb(po) + '/' + mb(pu):>17} " + (f"{pu / po:6.3f}" if po else f"{'-':>6}"))
            REPORT.say(f"{name:<11} {r['precision']:<9} {p:<9} {r['formulation'][p]:<9} "
                       f"{med(t[p + ' official']):9.3f} {med(t[p + ' ours']):9.3f} "
                       f"{fmt_ratio(r['ratios'][p]['official / ours']):>22}" + memory)
            if ARGS.compile:
                rp = r["ratios"][p]
                parts = [f"{k} {fmt_ratio(rp[k])}" for k in ("compiled official / ours", "official eager / compiled",
                                                              "ours eager / compiled") if k in rp]
                peak = mem.get("peak ours compiled") if p == "training" else None
                labels = [f"{p} {label} compiled" for label in ("official", "ours")]
                REPORT.say(f"{'':<21} compiled: " + "; ".join(parts) + (f"; peak ours {mb(peak)} MB" if peak else "")
                           + f"; {fmt_compile(r['compile'], labels)} (official / ours)")
    summary = {}
    REPORT.say("", "   Geometric mean over the maps of the median speed-up, and of the saved-for-backward ratio:")
    for precision in dict.fromkeys(r["precision"] for r in rows):
        sub = [r for r in rows if r["precision"] == precision]
        s = {p: geomean([r["ratios"][p]["official / ours"]["median"] for r in sub])
             for p in ("inference", "training")}
        s["saved ours / official"] = geomean([r["memory_bytes"]["saved ours"] / r["memory_bytes"]["saved official"]
                                              for r in sub])
        peaks = [r["memory_bytes"]["peak ours"] / r["memory_bytes"]["peak official"] for r in sub
                 if r["memory_bytes"]["peak official"]]
        if peaks:
            s["peak ours / official"] = geomean(peaks)
        summary[precision] = s
        REPORT.say(f"   {precision:<8} inference {s['inference']:.2f}x, training step {s['training']:.2f}x, saved "
                   f"{s['saved ours / official']:.3f}" + (f", peak {s['peak ours / official']:.3f}" if peaks else ""))
    return summary


# --- 4: whole networks ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def recording():
    """The names ``TripletAttention.formulation`` returns inside the block, one per call (eager calls only)."""
    names, original = [], TripletAttention.formulation

    def spy(self, x):
        name = original(self, x)
        names.append(name)
        return name

    TripletAttention.formulation = spy
    try:
        yield names
    finally:
        TripletAttention.formulation = original


def counted(names: list[str]) -> str:
    """'autocast x8', 'plain x3 + small x2', or 'none'."""
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    return " + ".join(f"{n} x{c}" for n, c in counts.items()) or "none"


def grad_scaler(enabled: bool):
    """``torch.amp.GradScaler`` for the device (torch.cuda.amp's before torch 2.3), as ultralytics' trainer makes it."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(DEV.type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def bench_networks() -> dict:
    """AMP training step and fused inference of the named networks, each against plain yolov5s in the same rounds."""
    from ultralytics import YOLO

    amp_precision = "fp16" if DEV.type == "cuda" else "bf16"
    models = {}
    for name in NETWORKS:
        torch.manual_seed(0)
        models[name] = YOLO(f"{name}.yaml").model.to(DEV)
    fused = {name: copy.deepcopy(m).fuse(verbose=False).eval() for name, m in models.items()}
    imgs = torch.randn(ARGS.train_batch, 3, ARGS.imgsz, ARGS.imgsz, device=DEV)
    img = torch.randn(1, 3, ARGS.imgsz, ARGS.imgsz, device=DEV)

    def train_step(model, net):
        opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
        scaler = grad_scaler(amp_precision == "fp16")

        def f():
            model.train()
            with amp(amp_precision):
                loss = sum((t.float() ** 2).mean() for t in flat(model(imgs)))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            SYNC()

        return f

    def infer(model, x):
        def f():
            with torch.inference_mode():
                model(x)
            SYNC()

        return f

    labels = {"train": f"AMP training step ({amp_precision}), batch {ARGS.train_batch}",
              "inference float32": "fused inference, float32, batch 1",
              "inference float16": "fused inference, float16 (model.half()), batch 1"}
    contexts = {"train": {name: train_step(m, m) for name, m in models.items()},
                "inference float32": {name: infer(m, img) for name, m in fused.items()}}
    if DEV.type == "cuda":  # CPU convolutions in float16 are not what anyone deploys
        half = {name: copy.deepcopy(m).half() for name, m in fused.items()}
        contexts["inference float16"] = {name: infer(m, img.half()) for name, m in half.items()}
    results = {}
    for context, fns in contexts.items():
        formulations, compile_info = {}, {}
        for name, f in fns.items():
            with recording() as names:
                f()
            formulations[name] = counted(names)
        if ARGS.compile:
            from torch import _dynamo

            _dynamo.reset()
            compiled = {}
            for name in NETWORKS:
                if context == "train":
                    compiled[f"{name} compiled"] = train_step(compile_module(models[name]), models[name])
                else:
                    net, x = (fused[name], img) if context == "inference float32" else (half[name], img.half())
                    compiled[f"{name} compiled"] = infer(compile_module(net), x)
            ok, compile_info = compiled_variants(compiled)
            fns = {**fns, **ok}
        times = measure.interleaved(fns, ARGS.net_rounds, min_round_ms=MIN_ROUND_MS, warmup=WARMUP)
        ratios = {name: per_round(times, name, NETWORKS[0]) for name in NETWORKS[1:]}
        for name in NETWORKS:
            if f"{name} compiled" in times:
                ratios[f"{name} eager / compiled"] = per_round(times, name, f"{name} compiled")
                if name != NETWORKS[0] and f"{NETWORKS[0]} compiled" in times:
                    ratios[f"{name} compiled"] = per_round(times, f"{name} compiled", f"{NETWORKS[0]} compiled")
        peaks = {name: peak_bytes(f) for name, f in fns.items()} if context == "train" else {}
        results[context] = {"label": labels[context], "times_ms": times, "ratios": ratios,
                            "formulations": formulations, "peak_bytes": peaks, "compile": compile_info}
    report_networks(results)
    return {"imgsz": ARGS.imgsz, "amp": amp_precision, "contexts": results}


def report_networks(results: dict) -> None:
    """Print each context's rows: time, time over plain yolov5s, formulations, and the compiled rows."""
    REPORT.say("", f"4. Whole networks on {DEV}: imgsz {ARGS.imgsz}, {ARGS.net_rounds} rounds; ms per call (median); "
               "'/ yolov5s' = the network's time over plain yolov5s's in the same round (compiled: over compiled "
               "yolov5s's), median (min-max); 'peak' = a training step's peak memory above what was allocated before")
    for r in results.values():
        t, ratios, peaks = r["times_ms"], r["ratios"], r["peak_bytes"]
        show_peak = any(v is not None for v in peaks.values())
        REPORT.say("", f"   {r['label']}", f"{'network':<31} {'ms':>9} {'/ yolov5s':>22}"
                   + (f" {'peak MB':>9}" if show_peak else "") + "  formulations ran")
        for name in NETWORKS:
            REPORT.say(f"{name:<31} {statistics.median(t[name]):9.2f} {fmt_ratio(ratios.get(name)):>22}"
                       + (f" {mb(peaks.get(name)):>9}" if show_peak else "") + f"  {r['formulations'][name]}")
        for name in NETWORKS:
            key = f"{name} compiled"
            if key in t:
                REPORT.say(f"{key:<31} {statistics.median(t[key]):9.2f} {fmt_ratio(ratios.get(key)):>22}"
                           + (f" {mb(peaks.get(key)):>9}" if show_peak else "")
                           + f"  eager / compiled {fmt_ratio(ratios[name + ' eager / compiled'])}; "
                           + fmt_compile(r["compile"], [key]))


# --- run ------------------------------------------------------------------------------------------------------------
def main() -> None:
    """Run every section not skipped, print, and write the results (also what a failing run got so far)."""
    out = ARGS.out or ROOT / "benchmarks" / f"results-gpu-{DEV.type}.json"
    if ARGS.compile:
        prepare_compile()
    info = describe()
    report_machine(info)
    REPORT.results.update(command=" ".join(sys.argv), machine=info, settings={
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(ARGS).items()})
    seconds = REPORT.results["seconds"] = {}
    try:
        maps = QUICK_MAPS if ARGS.quick else MAPS
        t0 = time.perf_counter()
        REPORT.say("")
        chosen = REPORT.results["formulations"] = which_formulation(maps)
        if not ARGS.skip_match:
            REPORT.results["match"] = match_all(chosen)
        seconds["formulations and match"] = time.perf_counter() - t0
        if not ARGS.skip_maps:
            t0 = time.perf_counter()
            rows = [bench_map(shape, p) for p in ARGS.precisions for shape in maps]
            REPORT.results["modules"] = {"rows": rows, "summary": report_maps(rows)}
            seconds["modules"] = time.perf_counter() - t0
        if not ARGS.skip_networks:
            t0 = time.perf_counter()
            REPORT.results["networks"] = bench_networks()
            seconds["networks"] = time.perf_counter() - t0
    finally:
        seconds["total"] = time.perf_counter() - T_START
        out.parent.mkdir(parents=True, exist_ok=True)
        REPORT.say("", "Seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()),
                   f"Results: {out} and {out.with_suffix('.txt')}")
        out.write_text(json.dumps(REPORT.results, indent=1, default=str) + "\n")
        out.with_suffix(".txt").write_text("\n".join(REPORT.lines) + "\n")


if __name__ == "__main__":
    main()
