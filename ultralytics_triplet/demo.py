"""The offline demo: yolov5n-triplet and yolov5n trained on synthetic shapes with one budget, side by side.

Examples:
    >>> from ultralytics_triplet.demo import demo
    >>> print(demo("triplet-demo", epochs=3))  # the table; also written to triplet-demo/results.txt
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from ._text import PREFIX, table

__all__ = ("DEMO_ITEMS", "DEMO_MODELS", "demo", "format_demo_table", "run_demo")

DEMO_MODELS = ("yolov5n-triplet.yaml", "yolov5n.yaml")
DEMO_ITEMS = ("shapes", "runs", "gates.png", "results.txt")  # what the demo writes into its directory


def demo(
    out: str | Path, epochs: int = 10, imgsz: int = 128, n_train: int = 256, batch: int = 16, seed: int = 0,
    force: bool = False,
) -> str:
    """Check the arguments, clear an earlier demo's files (``force``), run the demo, write and return its table.

    Raises:
        FileExistsError: If ``out`` is not empty and ``force`` is False.
        ValueError: On a bad argument (nothing is written then).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(f"'{out}' is not empty; choose a new --out directory or pass --force to reuse it")
    for what, v, low in (("--epochs", epochs, 1), ("--imgsz", imgsz, 32), ("--train-images", n_train, 2),
                         ("--batch", batch, 1)):
        if v < low:
            raise ValueError(f"{what} must be >= {low}, got {v}")
    if imgsz % 32:
        raise ValueError(f"--imgsz must be a multiple of 32, got {imgsz}")
    for item in DEMO_ITEMS:  # force: replace only what an earlier demo wrote, never anything else in out
        p = out / item
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    results = run_demo(out, epochs=epochs, imgsz=imgsz, n_train=n_train, batch=batch, seed=seed)
    text = format_demo_table(results, epochs=epochs, imgsz=imgsz, n_train=n_train, batch=batch, seed=seed)
    (out / "results.txt").write_text(text + "\n", encoding="utf-8")
    return text


def run_demo(out: Path, epochs: int, imgsz: int, n_train: int, batch: int, seed: int) -> list[dict]:
    """Make the dataset, train both models, visualize the triplet one; return one result dict per model."""
    from ultralytics import YOLO
    from ultralytics.utils import LOGGER

    from .compare import model_stats
    from .data import make_shapes_dataset
    from .visualize import visualize

    data = make_shapes_dataset(out / "shapes", n_train=n_train, n_val=max(8, n_train // 4), imgsz=imgsz, seed=seed)
    LOGGER.info(f"{PREFIX} synthetic dataset ({n_train} train images, {imgsz} px) in {data.parent}")
    results = []
    for name in DEMO_MODELS:
        LOGGER.info(f"{PREFIX} training {name} for {epochs} epoch{'s' * (epochs > 1)} (seed {seed})")
        model = YOLO(name)
        t0 = time.perf_counter()
        metrics = model.train(
            data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, workers=0, device="cpu", seed=seed,
            deterministic=True, plots=False, project=str((out / "runs").resolve()), name=Path(name).stem,
            exist_ok=True, amp=False, verbose=False,
        )
        wall = time.perf_counter() - t0
        stats = model_stats(model.model, imgsz)  # the trained model (nc of the dataset), as loaded from best.pt
        rd = getattr(metrics, "results_dict", None) or {}
        results.append({
            "name": name, **stats, "map50": rd.get("metrics/mAP50(B)", float("nan")),
            "map": rd.get("metrics/mAP50-95(B)", float("nan")), "wall_s": wall,
            "best": Path(model.trainer.best if model.trainer.best.exists() else model.trainer.last),
        })
    image = sorted((data.parent / "images" / "val").iterdir())[0]
    visualize(results[0]["best"], image, out / "gates.png", imgsz=imgsz)
    return results


def format_demo_table(results: list[dict], epochs: int, imgsz: int, n_train: int, batch: int, seed: int) -> str:
    """The demo's side-by-side table, with its budget on top and a caveat below."""
    a, b = results
    rows = [
        ("", a["name"], b["name"]),
        ("parameters", f"{a['parameters']:,}", f"{b['parameters']:,}"),
        (f"GFLOPs @{imgsz}", f"{a['gflops']:.3f}", f"{b['gflops']:.3f}"),
        ("mAP50 (val)", f"{a['map50']:.4f}", f"{b['map50']:.4f}"),
        ("mAP50-95 (val)", f"{a['map']:.4f}", f"{b['map']:.4f}"),
        ("train wall time", f"{a['wall_s']:.1f} s", f"{b['wall_s']:.1f} s"),
    ]
    return (
        f"Demo: {epochs} epoch(s), imgsz {imgsz}, {n_train} synthetic train images, batch {batch}, seed {seed}, CPU\n"
        f"{table(rows)}\n"
        "(tiny budget: the numbers show the pipeline works, not which model is better)"
    )
