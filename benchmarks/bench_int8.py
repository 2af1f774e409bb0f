"""INT8 through ultralytics' OpenVINO export: what quantization costs a triplet model's accuracy, next to the plain one.

One command, offline (synthetic shapes data, CPU; needs openvino and nncf, both in the ``test`` extra):

    python benchmarks/bench_int8.py                 # the table in docs/export.md
    python benchmarks/bench_int8.py --quick         # a smoke run

1. Trains a plain yolov5n on the synthetic shapes set (the base; the same base as ``bench_finetune.py``, reused from
   ``--out`` when it is there).
2. Fine-tunes the plain model and each named placement from the base, ``--epochs`` epochs, seeds 0..``--seeds``-1.
3. Exports each fine-tuned model twice through ``model.export(format="openvino")``: float32, and INT8
   (``quantize=8``, ``int8=True`` before ultralytics 8.4) with NNCF calibrating on the synthetic set (``data=``), as a
   user quantizes.
4. Validates both exports in OpenVINO (batch 1) and reports val mAP50-95 and mAP50, and the paired drop INT8 - FP32,
   mean ± std over seeds, with each placement's drop next to the plain model's.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench_finetune import COMMON, PLACEMENTS, arguments, base_name, cfg_path, fmt, table, train, workspace

VARIANTS = {"plain yolov5n": "yolov5n.yaml", **PLACEMENTS}


def exported_maps(best: Path, data: str, imgsz: int, int8: bool) -> tuple[float, float]:
    """(mAP50-95, mAP50) on the val split of ``best`` exported to OpenVINO, INT8-quantized or float32."""
    from ultralytics import YOLO
    from ultralytics.cfg import DEFAULT_CFG_DICT

    quantize = ({"quantize": 8} if "quantize" in DEFAULT_CFG_DICT else {"int8": True}) if int8 else {}  # 8.4: quantize
    folder = YOLO(best).export(format="openvino", data=data, imgsz=imgsz, device="cpu", verbose=False, **quantize)
    box = YOLO(folder, task="detect").val(data=data, imgsz=imgsz, batch=1, **{**COMMON, "exist_ok": True}).box
    return float(box.map), float(box.map50)


def main() -> None:
    """Run the benchmark and print its table."""
    a = arguments(__doc__.splitlines()[0])
    t0 = time.time()
    work, data = workspace(a, "bench-int8-")
    import nncf
    import openvino

    from ultralytics_triplet.measure import machine

    print(f"bench_int8: {machine()}; openvino {openvino.__version__}, nncf {nncf.__version__}; {a.threads} threads")
    name = base_name(a)
    base = work / name / "weights" / "best.pt"
    if not base.exists():
        train("yolov5n.yaml", data, a.base_epochs, a.imgsz, 0, work, name)
    print(f"base: yolov5n, {a.base_epochs} epochs from scratch on synthetic shapes ({a.train_images} train images, "
          f"{a.imgsz} px, seed 0)")
    print(f"each variant fine-tuned {a.epochs} epochs from the base (pretrained=), seeds 0..{a.seeds - 1}; exported "
          f"to OpenVINO float32 and INT8 (NNCF, calibrated on the synthetic set); val in OpenVINO, batch 1\n")

    results = {}
    for label, cfg in VARIANTS.items():
        cfg = cfg_path(cfg, work)
        runs = []
        for seed in range(a.seeds):
            run = f"ft-{Path(cfg).stem}-s{seed}"
            best = work / run / "weights" / "best.pt"
            if not best.exists():
                train(cfg, data, a.epochs, a.imgsz, seed, work, run, pretrained=str(base))
            runs.append((exported_maps(best, data, a.imgsz, int8=False), exported_maps(best, data, a.imgsz, int8=True)))
        results[label] = runs

    plain_drops = [q[0] - f[0] for f, q in results["plain yolov5n"]]
    rows = [("variant", "FP32 mAP50-95", "INT8 mAP50-95", "INT8 - FP32", "FP32 mAP50", "INT8 mAP50",
             "drop - plain's drop")]
    for label, runs in results.items():
        drops = [q[0] - f[0] for f, q in runs]
        rows.append((label, fmt([f[0] for f, _ in runs]), fmt([q[0] for _, q in runs]), fmt(drops),
                     fmt([f[1] for f, _ in runs]), fmt([q[1] for _, q in runs]),
                     "—" if label.startswith("plain") else fmt([d - p for d, p in zip(drops, plain_drops)])))
    print("val mAP, mean ± std over seeds; differences paired by seed")
    print(table(rows))
    print(f"\n(total {time.time() - t0:.0f} s; work directory {work})")


if __name__ == "__main__":
    main()
