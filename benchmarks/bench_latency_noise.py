"""Copies of one model timed interleaved as the study times its rows: how far apart identical models read.

Usage:
    python benchmarks/bench_latency_noise.py                          # yolov5n at 64 px in ONNX Runtime, 3 copies
    python benchmarks/bench_latency_noise.py --imgsz 320 --runtime torch --repeats 10

The model is built once (random weights, seed 0) and, for ``onnx``, exported once by ultralytics' own exporter; each
copy is its own ONNX Runtime session on a copy of the file (or a copy of the fused PyTorch model), as each row of a
study is. Each repeat times all copies in ``--rounds`` interleaved rounds on one thread (``measure.interleaved``, the
timing core of ``study/costs.py``), and reads every copy against the first as the study reads a row against the plain
model: the geometric mean of the ratio in the same round, with its 95% t-interval (``stats.log_ratio_interval``).

The copies are the same model, so every difference is noise. The summary says how many intervals exclude 1 (by chance
alone about 5% of them), the largest reading either way, and how many the study's rule would read as detectably
slower or faster, an interval that lies beyond ``readings.LATENCY_TIE``: none should.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolov5n.yaml", help="model config (default yolov5n.yaml)")
    p.add_argument("--imgsz", type=int, default=64, help="image size, a multiple of 32 (default 64, the demo's)")
    p.add_argument("--runtime", choices=("onnx", "torch"), default="onnx", help="where to time (default onnx)")
    p.add_argument("--copies", type=int, default=3, help="copies of the model timed side by side (default 3)")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds per repeat (default 20, the study's)")
    p.add_argument("--repeats", type=int, default=20, help="repeats of the whole measurement (default 20)")
    args = p.parse_args(argv)
    for name, low in (("copies", 2), ("rounds", 2), ("repeats", 1), ("imgsz", 32)):
        if getattr(args, name) < low:
            p.error(f"--{name} must be at least {low}, got {getattr(args, name)}")
    if args.imgsz % 32:
        p.error(f"--imgsz must be a multiple of 32, got {args.imgsz}")
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # one thread, as the study times, before torch is imported
    os.environ["OMP_NUM_THREADS"] = "1"
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _checkout import use_checkout

    use_checkout(__file__)  # benchmark this checkout's package


def runners(folder: Path) -> dict[str, object]:
    """Label -> a function that runs one batch-1 inference of one copy."""
    import copy

    import numpy as np
    import torch
    from ultralytics import YOLO

    from ultralytics_triplet.measure import ort_session

    torch.manual_seed(0)
    model = YOLO(ARGS.model)
    if ARGS.runtime == "torch":
        fused = model.model.fuse(verbose=False).eval()
        x = torch.rand(1, 3, ARGS.imgsz, ARGS.imgsz)
        copies = [copy.deepcopy(fused) for _ in range(ARGS.copies)]
        return {f"copy {k}": (lambda m=m: m(x)) for k, m in enumerate(copies)}
    from ultralytics.utils import LOGGER

    level, here = LOGGER.level, Path.cwd()
    LOGGER.setLevel(logging.WARNING)  # the exporter's report is not the benchmark's
    os.chdir(folder)  # the exporter writes beside the model's name: here, in the throw-away folder
    try:
        exported = Path(model.export(format="onnx", imgsz=ARGS.imgsz, batch=1, device="cpu")).resolve()
    finally:
        os.chdir(here)
        LOGGER.setLevel(level)
    feed = np.random.default_rng(0).random((1, 3, ARGS.imgsz, ARGS.imgsz), dtype=np.float32)
    out = {}
    for k in range(ARGS.copies):
        path = folder / f"copy{k}.onnx"
        shutil.copy(exported, path)
        session = ort_session(path, 1)
        inputs = {session.get_inputs()[0].name: feed}
        out[f"copy {k}"] = lambda s=session, inputs=inputs: s.run(None, inputs)
    return out


def main() -> None:
    """Time, read each copy as the study reads a row, print."""
    import torch

    from ultralytics_triplet.measure import interleaved, machine
    from ultralytics_triplet.study.readings import LATENCY_TIE
    from ultralytics_triplet.study.stats import log_ratio_interval

    torch.set_num_threads(1)
    print(f"Machine: {machine()}")
    print(f"Command: python {' '.join(sys.argv)}")
    print(f"{ARGS.copies} copies of {ARGS.model} at imgsz {ARGS.imgsz} in {ARGS.runtime}, batch 1, one thread; "
          f"{ARGS.repeats} repeats of {ARGS.rounds} interleaved rounds; each copy against copy 0: geometric-mean "
          "ratio [95% interval]")
    floor = math.log1p(LATENCY_TIE)
    readings, excluding, beyond = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        fns = runners(Path(tmp))
        first = next(iter(fns))
        for repeat in range(ARGS.repeats):
            times = interleaved(fns, ARGS.rounds)
            cells = []
            for label in list(fns)[1:]:
                d = log_ratio_interval(times[first], times[label])
                readings.append(d.mean)
                excluding += d.lo > 0 or d.hi < 0
                beyond += d.lo > floor or d.hi < -floor
                cells.append(f"{label} {math.exp(d.mean) - 1:+6.1%} [{math.exp(d.lo) - 1:+6.1%}, "
                             f"{math.exp(d.hi) - 1:+6.1%}]")
            print(f"repeat {repeat + 1:2d}: copy 0 {sorted(times[first])[len(times[first]) // 2]:.3f} ms; "
                  + "; ".join(cells), flush=True)
    n = len(readings)
    print(f"\n{n} readings of identical models: {excluding} intervals exclude 1 ({excluding / n:.0%}; by chance about "
          f"5%); readings from {math.exp(min(readings)) - 1:+.1%} to {math.exp(max(readings)) - 1:+.1%}; "
          f"{beyond} read as detectably slower or faster by the study's rule (an interval beyond "
          f"{LATENCY_TIE:.0%}).")


if __name__ == "__main__":
    main()
