"""From a pretrained plain YOLO to triplet YOLOs: what survives the load, and what fine-tuning makes of it.

One command, offline (synthetic shapes data, CPU):

    python benchmarks/bench_finetune.py                 # the table in docs/pretrained.md
    python benchmarks/bench_finetune.py --quick         # a smoke run

1. Trains a plain yolov5n on the synthetic shapes set (the base).
2. For each named placement (triplet, triplet-neck, triplet-dense) reports val mAP50-95 right after loading the
   base, as a ratio to the base's: through ``DetectionModel(cfg, nc).load(base)`` with the pass-through start (this
   package's default), with the paper's initialisation (``ULTRALYTICS_TRIPLET_PASS_THROUGH=0``), and through
   ultralytics' trainer with ``pretrained=base`` and a zero learning rate (one epoch, so only the load and BN
   statistics act).
3. Fine-tunes the plain model and each placement for ``--epochs`` epochs from the base, same seeds, and reports
   mAP50-95 mean ± std over seeds and the paired difference to the plain model.
4. Reports how far the inserted gates moved from their starting values (BN scale from 0, BN shift from 4, conv
   weights relative change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from ultralytics_triplet.placements import NAMES

PLACEMENTS = {f"yolov5n-{name}.yaml": f"yolov5n-{name}.yaml" for name in NAMES}  # label -> config, every placement
ZERO_LR = dict(optimizer="SGD", lr0=0.0, lrf=1.0, warmup_epochs=0, warmup_bias_lr=0.0)  # 'auto' would ignore lr0
COMMON = dict(workers=0, device="cpu", plots=False, verbose=False, amp=False, exist_ok=True, deterministic=True)


def cfg_path(name: str, work: Path) -> str:
    """A placement's config: by name where it resolves, else the dense rule applied with insert_layers."""
    from ultralytics_triplet.loading import load_model_yaml
    from ultralytics_triplet.surgery import insert_layers_with_rows, model_rows, write_yaml

    try:
        load_model_yaml(name)
        return name
    except FileNotFoundError:
        rows = load_model_yaml("yolov5n.yaml")
        c3 = [i for i, r in enumerate(model_rows(rows)) if r[2] == "C3"]
        d, new = insert_layers_with_rows("yolov5n.yaml", after=c3)
        return str(write_yaml(d, work / name, new, force=True))


def val_map(net, data: str, imgsz: int) -> float:
    """Val mAP50-95 of a model object through ultralytics' validator."""
    from ultralytics import YOLO

    wrapper = YOLO("yolov5n.yaml", verbose=False)
    wrapper.model = net
    return float(wrapper.val(data=data, imgsz=imgsz, batch=16, **{**COMMON, "exist_ok": True}).box.map)


def loaded(cfg: str, base: str, nc: int, pass_through: bool):
    """``DetectionModel(cfg, nc).load(base model)``, the route ``train(pretrained=...)`` takes."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from ultralytics_triplet.loading import load_checkpoint, load_model_yaml

    os.environ["ULTRALYTICS_TRIPLET_PASS_THROUGH"] = "1" if pass_through else "0"
    try:
        torch.manual_seed(0)
        net = DetectionModel(load_model_yaml(cfg), nc=nc, verbose=False)
        source = load_checkpoint(base)[0]
        net.load(source, verbose=False)
        net.names = dict(source.names)
        return net
    finally:
        os.environ.pop("ULTRALYTICS_TRIPLET_PASS_THROUGH", None)


def train(cfg: str, data: str, epochs: int, imgsz: int, seed: int, project: Path, name: str, **kw) -> tuple:
    """Train through ultralytics; return (final val mAP50-95, how far the gates moved (see ``gates_moved``))."""
    from ultralytics import YOLO

    model = YOLO(cfg, verbose=False)
    start = {}
    model.add_callback("on_train_start", lambda t: start.update(gate_tensors(t.model)))
    moved = []
    model.add_callback("on_train_end", lambda t: moved.append(gates_moved(start, gate_tensors(t.ema.ema))))
    metrics = model.train(data=data, epochs=epochs, imgsz=imgsz, batch=16, seed=seed, project=str(project),
                          name=name, **{**COMMON, **kw})
    return float(metrics.box.map), moved[0] if moved else None


def gate_tensors(model) -> dict[str, dict]:
    """Copies of every inserted gate's BN scale, BN shift and conv weight, by module name."""
    from ultralytics_triplet.nn import TripletAttention

    return {f"{n}.{k}": {"scale": g.conv.bn.weight.detach().clone(), "shift": g.conv.bn.bias.detach().clone(),
                         "conv": g.conv.conv.weight.detach().clone()}
            for n, m in model.named_modules() if isinstance(m, TripletAttention)
            for k, g in (("cw", m.cw), ("hc", m.hc), ("hw", getattr(m, "hw", None))) if g is not None}


def gates_moved(start: dict[str, dict], end: dict[str, dict]) -> tuple[float, float, float] | None:
    """Mean over gates of |BN scale change|, |BN shift change| and ||conv change|| / ||conv at start||."""
    if not start:
        return None
    keys = sorted(start)
    return (statistics.mean((end[k]["scale"] - start[k]["scale"]).abs().mean().item() for k in keys),
            statistics.mean((end[k]["shift"] - start[k]["shift"]).abs().mean().item() for k in keys),
            statistics.mean(((end[k]["conv"] - start[k]["conv"]).norm() / start[k]["conv"].norm()).item()
                            for k in keys))


def ratio(value: float, base: float) -> str:
    """value / base, or n/a for a base of 0."""
    return f"{value / base:.3f}" if base > 0 else "n/a"


def fmt(values: list[float]) -> str:
    """mean ± std."""
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def arguments(description: str) -> argparse.Namespace:
    """The arguments of the fine-tuning benchmarks (this one and ``bench_int8.py``): the base's and the runs' budget."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--base-epochs", type=int, default=40)
    p.add_argument("--epochs", type=int, default=5, help="fine-tuning epochs per run")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--imgsz", type=int, default=128)
    p.add_argument("--train-images", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="work directory (default: a temporary one)")
    p.add_argument("--quick", action="store_true", help="tiny budget smoke run")
    a = p.parse_args()
    if a.quick:
        a.base_epochs, a.epochs, a.seeds, a.train_images, a.imgsz = 8, 1, 2, 64, 64
    return a


def workspace(a: argparse.Namespace, prefix: str) -> tuple[Path, str]:
    """Threads and quiet logging set; the work directory and its shapes dataset (an earlier run's is reused)."""
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from ultralytics.utils import LOGGER

    from ultralytics_triplet.data import make_shapes_dataset

    torch.set_num_threads(a.threads)
    LOGGER.setLevel("WARNING")
    work = Path(a.out or tempfile.mkdtemp(prefix=prefix)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    shapes = work / "shapes"
    if (shapes / "data.yaml").exists():
        return work, str(shapes / "data.yaml")
    return work, str(make_shapes_dataset(shapes, n_train=a.train_images, n_val=max(8, a.train_images // 4),
                                         imgsz=a.imgsz, seed=0))


def base_name(a: argparse.Namespace) -> str:
    """The base's run name: an earlier run's base with the same budget is reused."""
    return f"base-e{a.base_epochs}-n{a.train_images}-i{a.imgsz}"


def main() -> None:
    """Run the benchmark and print its tables."""
    a = arguments(__doc__.splitlines()[0])
    t0 = time.time()
    work, data = workspace(a, "bench-finetune-")
    from ultralytics_triplet.loading import load_checkpoint
    from ultralytics_triplet.measure import machine
    from ultralytics_triplet.nn import PASS_THROUGH_BIAS, TripletAttention

    print(f"bench_finetune: {machine()}; {a.threads} threads")
    name = base_name(a)
    base = work / name / "weights" / "best.pt"
    if base.exists():
        base_map = val_map(load_checkpoint(base)[0], data, a.imgsz)
    else:
        base_map, _ = train("yolov5n.yaml", data, a.base_epochs, a.imgsz, 0, work, name)
    print(f"base: yolov5n, {a.base_epochs} epochs from scratch on synthetic shapes ({a.train_images} train images, "
          f"{a.imgsz} px, seed 0): val mAP50-95 {base_map:.3f}\n")

    cfgs = {label: cfg_path(name, work) for label, name in PLACEMENTS.items()}
    print("Right after loading the base (no training): val mAP50-95 / base's")
    rows = [("placement", "layers", ".load() [default]", ".load() paper init", "train(pretrained=, lr0=0)")]
    layers = {}
    for label, cfg in cfgs.items():
        net = loaded(cfg, str(base), nc=3, pass_through=True)
        layers[label] = sum(isinstance(m, TripletAttention) for m in net.modules())
        kept = val_map(net, data, a.imgsz)
        paper = val_map(loaded(cfg, str(base), nc=3, pass_through=False), data, a.imgsz)
        zero, _ = train(cfg, data, 1, a.imgsz, 0, work, f"lr0-{Path(cfg).stem}", pretrained=str(base), **ZERO_LR)
        rows.append((label, str(layers[label]), ratio(kept, base_map), ratio(paper, base_map),
                     ratio(zero, base_map)))
    print(table(rows))

    print(f"\nFine-tuned {a.epochs} epochs from the base (pretrained=, default hyper-parameters), "
          f"seeds 0..{a.seeds - 1}: val mAP50-95")
    results = {"plain yolov5n": [train("yolov5n.yaml", data, a.epochs, a.imgsz, s, work, f"ft-plain-s{s}",
                                       pretrained=str(base))[0] for s in range(a.seeds)]}
    moved = {}
    for label, cfg in cfgs.items():
        runs = [train(cfg, data, a.epochs, a.imgsz, s, work, f"ft-{Path(cfg).stem}-s{s}", pretrained=str(base))
                for s in range(a.seeds)]
        results[label] = [m for m, _ in runs]
        moved[label] = [statistics.mean(x) for x in zip(*(m for _, m in runs))]
    plain = results["plain yolov5n"]
    rows = [("variant", "mAP50-95 mean ± std", "/ base", "paired Δ vs plain (mean ± std)")]
    for label, values in results.items():
        diffs = [v - p for v, p in zip(values, plain)]
        rows.append((label, fmt(values), ratio(statistics.mean(values), base_map),
                     "—" if label.startswith("plain") else fmt(diffs)))
    print(table(rows))
    print(f"\nHow far the inserted gates moved in those {a.epochs} epochs (start: BN scale 0, BN shift "
          f"{PASS_THROUGH_BIAS:g}; mean over gates and seeds; the saved EMA weights):")
    rows = [("placement", "|Δ BN scale|", "|Δ BN shift|", "‖Δ conv‖ / ‖conv‖")]
    rows += [(label, f"{s:.4f}", f"{h:.4f}", f"{c:.2%}") for label, (s, h, c) in moved.items()]
    print(table(rows))
    print(f"\n(total {time.time() - t0:.0f} s; work directory {work})")


def table(rows) -> str:
    """Fixed-width table (the package's renderer)."""
    from ultralytics_triplet._text import table as render

    return render(rows)


if __name__ == "__main__":
    main()
