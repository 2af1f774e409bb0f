"""What a model costs: parameters, GFLOPs and batch-1 latency timed interleaved, and the machine it ran on.

``compare`` and ``study`` measure with these, and the benchmarks name the machine with :func:`machine`.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: cpu_name() and machine() stay cheap for the benchmarks
    import torch
    from torch import nn

__all__ = ("cpu_name", "machine", "model_stats", "time_forward")


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
    import ultralytics

    return (f"{cpu_name()}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__}, "
            f"ultralytics {ultralytics.__version__}")


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


def _input_channels(model: nn.Module) -> int:
    """Input channels of a model (its first conv's), 3 when unknown."""
    from torch import nn

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


def time_forward(
    models: list[nn.Module], imgsz: int, runs: int, warmup: int = 2, progress: bool = False,
    device: torch.device | None = None,
) -> list[list[float]]:
    """Batch-1 forward times (ms) of each model, interleaved (A, B, A, B, ...) after ``warmup`` passes each.

    Interleaving makes a busy machine disturb every model alike; on CUDA each pass is synchronized.
    """
    import torch
    from ultralytics.utils import TQDM

    device = device or torch.device("cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    inputs = [torch.rand(1, _input_channels(m), imgsz, imgsz, device=device) for m in models]
    times: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for _ in range(warmup):
            for m, x in zip(models, inputs):
                m(x)
        for _ in TQDM(range(runs), desc=f"{device.type.upper()} latency", disable=not progress, total=runs):
            for k, (m, x) in enumerate(zip(models, inputs)):
                sync()
                t0 = time.perf_counter()
                m(x)
                sync()
                times[k].append((time.perf_counter() - t0) * 1000)
    return times
