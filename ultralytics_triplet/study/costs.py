"""What each row of a study costs where the model ships: parameters, GFLOPs, and latency in a chosen runtime.

Each row is measured on its first seed's trained weights. The latency is timed at the study's image size, batch 1,
every row in turn within each round (``measure.interleaved``, the timing core the deployment benchmark uses too):

- ``torch``: the fused PyTorch model (Conv+BN folded), eager; on the CPU on one thread, on a GPU synchronized;
- ``onnx``: the file ultralytics' own ``model.export(format="onnx", imgsz, batch=1)`` writes (its defaults otherwise),
  run by ONNX Runtime on the CPU, one intra-op thread that does not spin;
- ``openvino``: ultralytics' ``model.export(format="openvino", imgsz, batch=1)``, run by OpenVINO on the CPU with the
  LATENCY hint on one thread, in its default precision.

One thread everywhere, so a busy machine disturbs every row alike. :func:`settings` says all of it in one line for
the table's footnote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics import YOLO

from .. import _compat
from .._checks import Remedy, fail
from .._text import one_line
from ..loading import load_model
from ..measure import input_channels, interleaved, model_stats, ort_session, ov_compiled
from .console import Steps, captured
from .options import RUNTIME, Runtime
from .plan import Plan
from .report import Cost, Summary

__all__ = ("ANOTHER_LATENCY", "EXPORT_LOG", "THREADS", "measure_costs", "settings")

THREADS = 1
EXPORT_LOG = "export.log"  # in the study folder: what ultralytics' exporter printed
ANOTHER_LATENCY = Remedy("every run is recorded: the same call with another latency reports them",
                         "every run is recorded: the same command with another --latency reports them")


def _on_gpu(device: Any) -> bool:
    return torch.cuda.is_available() and str(device if device is not None else "").lower() not in ("cpu", "mps")


def settings(plan: Plan) -> str:
    """How the latency column of ``plan`` is measured, for the table's footnote (after the column's name)."""
    options, imgsz = plan.options, plan.settings.imgsz
    runtime = RUNTIME[options.latency]
    lead = (f"batch-1 latency at imgsz {imgsz}, median of {options.latency_runs} interleaved rounds (in brackets: its "
            "time over the plain model's in the same round, geometric mean over the rounds; its 95% interval in "
            "study.csv and the chart), first seed's weights; ")
    if runtime.name == "torch":
        where = "GPU, each call synchronized" if _on_gpu(options.device) else f"CPU, {THREADS} thread"
        return f"{lead}PyTorch {torch.__version__}, eager, Conv+BN fused, {where}."
    exported = (f"exported by ultralytics {_compat.ultralytics_version()} model.export(format='{runtime.export}', "
                f"imgsz={imgsz}, batch=1), its defaults otherwise")
    if runtime.name == "onnx":
        import onnxruntime as ort  # optional: the onnx extra, checked before the study trains

        return (f"{lead}ONNX Runtime {ort.__version__}, CPUExecutionProvider, {THREADS} intra-op thread (no "
                f"spinning), 1 inter-op thread, default graph optimizations; {exported}.")
    import openvino as ov  # optional: the openvino extra, checked before the study trains

    return (f"{lead}OpenVINO {ov.__version__}, CPU, PERFORMANCE_HINT LATENCY, {THREADS} thread, its default "
            f"precision; {exported}.")


def _export(weights: Path, runtime: Runtime, imgsz: int, config: str) -> Path:
    """Export ``weights`` through ultralytics' own exporter; return the file the runtime opens.

    Raises:
        RuntimeError: If ultralytics' exporter fails: one line naming the row (every run is recorded by then).
    """
    try:
        with _compat.no_autoinstall():  # nothing is installed behind the user's back: the extra was checked
            exported = Path(YOLO(str(weights)).export(format=runtime.export, imgsz=imgsz, batch=1, device="cpu"))
    except Exception as e:
        raise fail(RuntimeError, None, f"latency '{runtime.name}': ultralytics {_compat.ultralytics_version()} could "
                   f"not export {config} ({type(e).__name__}: {one_line(e)})", ANOTHER_LATENCY) from None
    return next(exported.glob("*.xml")) if exported.is_dir() else exported


def _runner(runtime: Runtime, path: Path, imgsz: int, channels: int) -> Callable[[], Any]:
    """A function that runs one batch-1 inference of the exported file ``path``."""
    x = np.random.default_rng(0).random((1, channels, imgsz, imgsz), dtype=np.float32)
    if runtime.name == "onnx":
        session = ort_session(path, THREADS)
        feed = {session.get_inputs()[0].name: x}
        return lambda: session.run(None, feed)
    request = ov_compiled(path, THREADS).create_infer_request()
    return lambda: request.infer({0: x})


def _torch_runners(models: Sequence[torch.nn.Module], imgsz: int, device: Any) -> list[Callable[[], Any]]:
    """Functions that run one batch-1 forward pass of each fused model (synchronized on a GPU)."""
    dev = torch.device("cuda:0" if _on_gpu(device) else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    runners = []
    for m in models:
        fused = (m.fuse(verbose=False) if hasattr(m, "fuse") else m).to(dev)
        x = torch.rand(1, input_channels(m), imgsz, imgsz, device=dev)
        runners.append(lambda fused=fused, x=x: (fused(x), sync()))
    return runners


def measure_costs(rows: Sequence[Summary], plan: Plan, out: Path) -> list[Summary]:
    """The rows with their :class:`Cost`: parameters and GFLOPs of each first-seed model, latency in the plan's
    runtime (``latency``), at its image size, over ``latency_runs`` interleaved rounds, on its ``device``.

    Exports (``onnx``, ``openvino``) are written beside each run's weights, with one progress bar over them;
    what the exporter prints goes to ``out/export.log``, its warnings to the console too.
    """
    options, imgsz = plan.options, plan.settings.imgsz
    runtime, device = RUNTIME[options.latency], options.device
    models = [load_model(out / r.weights) for r in rows]
    stats = [model_stats(m, imgsz) for m in models]
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # every runtime on one thread: a busy machine disturbs every row alike
    try:
        if runtime.name == "torch":
            runners = _torch_runners(models, imgsz, device)
        else:
            steps = Steps(len(rows), f"latency {runtime.label}: export", "model")
            files = []
            try:
                for r in rows:
                    steps.start(r.config)
                    with captured(out / EXPORT_LOG, options.verbose, label=f"export {r.config}", write=steps.write):
                        files.append(_export(out / r.weights, runtime, imgsz, r.config))
                    steps.finish()
            finally:
                steps.close()
            runners = [_runner(runtime, f, imgsz, input_channels(m)) for f, m in zip(files, models)]
        with torch.inference_mode():
            times = interleaved({r.config: f for r, f in zip(rows, runners)}, options.latency_runs,
                                progress=f"latency {runtime.label}")
    finally:
        torch.set_num_threads(previous)
    plain = times[rows[0].config]
    device_name = "GPU" if runtime.name == "torch" and _on_gpu(device) else "CPU"
    return [dataclasses.replace(r, cost=Cost.timed(s, times[r.config], plain, runtime.name, device_name))
            for r, s in zip(rows, stats)]
