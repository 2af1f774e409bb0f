"""What a model costs: parameters, GFLOPs, latency timed interleaved in PyTorch, ONNX Runtime or OpenVINO.

:func:`interleaved` is the one timing core: ``compare``, the study and ``benchmarks/bench_deploy.py`` time with it, and
open runtime sessions with :func:`ort_session` and :func:`ov_compiled`. The benchmarks name the machine with
:func:`machine`.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _compat

if TYPE_CHECKING:  # torch is imported where it is used: cpu_name() and machine() stay cheap for the benchmarks,
    import torch  # which set their thread variables before torch is imported
    from torch import nn

__all__ = ("MIN_ROUND_MS", "cpu_name", "input_channels", "interleaved", "machine", "model_stats", "ort_session",
           "ov_compiled", "time_forward")

MIN_ROUND_MS = 20.0  # each function runs at least this long per round, so short ones are timed over several calls


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s first ``model name``, else what ``platform`` says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """One line naming the machine and the software: CPU, cores, Python, torch and ultralytics versions."""
    import torch

    return (f"{cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__}, "
            f"ultralytics {_compat.ultralytics_version()}")


def model_stats(model: nn.Module, imgsz: int = 640) -> dict[str, Any]:
    """Layers (leaf modules, as ultralytics counts them), parameters and GFLOPs of ``model`` at ``imgsz``."""
    from torch import nn
    from ultralytics.utils.torch_utils import get_flops

    return {
        "layers": sum(1 for m in model.modules() if len(m._modules) == 0),
        "rows": len(getattr(model, "model", [])) if isinstance(getattr(model, "model", None), nn.Sequential) else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gflops": get_flops(model, imgsz),
    }


def input_channels(model: nn.Module) -> int:
    """Input channels of a model (its first conv's), 3 when unknown."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def interleaved(fns: Mapping[str, Callable[[], Any]], rounds: int, min_round_ms: float = MIN_ROUND_MS,
                warmup: int = 3, progress: str | None = None,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Per-call ms of each function over ``rounds`` rounds; a round runs each function in turn (A, B, A, B, ...).

    ``warmup`` untimed rounds come first. With ``min_round_ms``, one more untimed call of each says how many calls
    make a round's share: enough for the fastest to run that long, the same count for every function, so each
    round's shares are comparable. Interleaving makes a busy machine disturb every function alike.

    Args:
        fns (Mapping[str, Callable]): Label -> a function that runs one inference (synchronized, where it must be).
        rounds (int): Timed rounds.
        min_round_ms (float): Least time of each function's share of a round; 0 for one call each.
        warmup (int): Untimed rounds first.
        progress (str | None): Description of a progress bar over the rounds (ultralytics' TQDM), or None.
        clock (Callable[[], float]): Seconds now: wall time (default), or ``time.process_time``, this process's CPU
            time, which other jobs on a shared machine do not add to.

    Returns:
        (dict[str, list[float]]): Label -> per-call milliseconds of each round.
    """
    from ultralytics.utils import TQDM  # lazy, as torch: the benchmarks set their threads before it loads

    for _ in range(warmup):
        for f in fns.values():
            f()
    n = 1
    if min_round_ms > 0:
        for f in fns.values():
            t0 = clock()
            f()
            n = max(n, math.ceil(min_round_ms / max((clock() - t0) * 1e3, 1e-6)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in TQDM(range(rounds), desc=progress, disable=progress is None, total=rounds):
        for k, f in fns.items():
            t0 = clock()
            for _ in range(n):
                f()
            times[k].append((clock() - t0) * 1e3 / n)
    return times


def time_forward(
    models: list[nn.Module], imgsz: int, runs: int, warmup: int = 2, progress: bool = False,
    device: torch.device | None = None,
) -> list[list[float]]:
    """Batch-1 forward times (ms) of each model, interleaved (A, B, A, B, ...) after ``warmup`` passes each.

    One call per model and round (:func:`interleaved` without a least round time); on CUDA each pass is synchronized.
    """
    import torch

    device = device or torch.device("cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    inputs = [torch.rand(1, input_channels(m), imgsz, imgsz, device=device) for m in models]

    def call(m: nn.Module, x: torch.Tensor) -> Callable[[], None]:
        return lambda: (m(x), sync())

    fns = {str(k): call(m, x) for k, (m, x) in enumerate(zip(models, inputs))}
    with torch.inference_mode():
        sync()
        times = interleaved(fns, runs, min_round_ms=0, warmup=warmup,
                            progress=f"{device.type.upper()} latency" if progress else None)
    return list(times.values())


def ort_session(path: Path, threads: int, profile: str | None = None):
    """An ONNX Runtime CPU session: ``threads`` intra-op threads that do not spin, one inter-op thread.

    Spinning threads of one session would slow the next one timed interleaved with it.
    """
    import onnxruntime as ort  # an optional dependency: the onnx extra

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile:
        so.enable_profiling, so.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ov_compiled(path: Path, threads: int, perf: bool = False):
    """An OpenVINO CPU model compiled with the LATENCY hint on ``threads`` threads (``perf``: per-node counters)."""
    import openvino as ov  # an optional dependency: the openvino extra

    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if perf:
        config["PERF_COUNT"] = "YES"
    return ov.Core().compile_model(str(path), "CPU", config)
