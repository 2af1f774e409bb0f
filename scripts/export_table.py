"""Export a triplet model through every ultralytics export format, run each exported file, and print a table.

Usage:
    python scripts/export_table.py                          # every format ultralytics offers (minutes)
    python scripts/export_table.py --formats onnx ncnn      # a few
    python scripts/export_table.py --markdown -o table.md   # the README's table
    python scripts/export_table.py --formats pb --markdown --update benchmarks/results-export.md  # replace rows

Each format runs in its own interpreter (a crashing converter cannot take the others down; ``--timeout`` each):
``YOLO("yolov5n-triplet.yaml").export(format=...)`` at ``--imgsz``, then ultralytics' ``AutoBackend`` loads the
exported file and runs it on a fixed random image; the max abs difference to the PyTorch model's raw output (boxes
in pixels and class scores, float32) is reported. A tiny synthetic dataset is passed as ``data`` to the formats that
take it (calibration), and onnx2tf's sample images (which ultralytics downloads for the TensorFlow formats; onnx2tf
checks its conversion on them) are written from the same synthetic images, so no format needs a download. A format
that fails is tried again with plain ``yolov5n.yaml``, so a failure of the tooling itself reads as such. ultralytics
may pip-install a format's tools on first use (``YOLO_AUTOINSTALL``, and only when its online check passes); set
``YOLO_AUTOINSTALL=False`` to keep the environment as it is and record what is missing. The description line names
the installed versions of the formats' tools (``TOOLS``); ``--update`` merges a run's rows into an earlier table, so
formats whose tools need an environment of their own can be run there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# ultralytics 8.4's export format arguments, in its own order (export_formats())
FORMATS = [
    "torchscript", "onnx", "openvino", "engine", "coreml", "coreai", "saved_model", "pb", "edgetpu", "litert",
    "paddle", "mnn", "ncnn", "imx", "rknn", "executorch", "axelera", "deepx", "qnn", "hailo", "ascend", "xilinx",
]
# Distributions whose versions the table's description line names, where installed (the formats' tools)
TOOLS = [
    "numpy", "onnx", "onnxruntime", "openvino", "tensorflow", "onnx2tf", "ai-edge-litert", "litert-torch",
    "paddlepaddle", "MNN", "ncnn", "pnnx", "model-compression-toolkit", "imx500-converter", "executorch",
]
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"  # what onnx2tf loads from the working dir


def write_onnx2tf_sample(images: Path, out: Path) -> None:
    """Write onnx2tf's 20 sample images (RGB, 128×128, float32 in [0, 1]) to ``out`` from the images in ``images``."""
    import cv2
    import numpy as np

    files = [f for f in sorted(images.rglob("*")) if f.is_file()][:20]
    x = [cv2.resize(cv2.imread(str(f)), (128, 128))[..., ::-1] for f in files]
    np.save(out, np.stack(x).astype(np.float32) / 255)


def worker(fmt: str, cfg: str, imgsz: int, out: Path) -> dict:
    """Export ``cfg`` to ``fmt`` in ``out``, run it, and return a result record (runs in the child interpreter)."""
    import numpy as np
    import torch
    from ultralytics import YOLO

    from ultralytics_triplet import make_shapes_dataset

    data = make_shapes_dataset(out / "shapes", n_train=16, n_val=8, imgsz=imgsz)  # calibration data, no download
    torch.manual_seed(0)
    model = YOLO(cfg)
    net = model.model.float().eval()
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = net(x)[0].numpy()
    os.chdir(out)
    if fmt in {"saved_model", "pb", "edgetpu"}:
        write_onnx2tf_sample(data.parent / "images", out / ONNX2TF_SAMPLE)
    t0 = time.perf_counter()
    try:
        from ultralytics.engine.exporter import export_formats

        table = export_formats()
        args = dict(zip(table["Argument"], table["Arguments"])).get(fmt, [])
        f = model.export(format=fmt, imgsz=imgsz, device="cpu", **({"data": str(data)} if "data" in args else {}))
    except Exception as e:  # noqa: BLE001 - any exporter failure is a table row
        return {"status": "export fails", "reason": f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"}
    rec = {"status": "exported", "file": Path(f).name, "export_s": round(time.perf_counter() - t0, 1)}
    if fmt == "coreml" and sys.platform != "darwin":
        rec.update(status="exported, not run", reason="coremltools runs .mlpackage files on macOS only")
        return rec
    try:
        from ultralytics.nn.autobackend import AutoBackend

        backend = AutoBackend(f, device=torch.device("cpu"), fp16=False)
        y = backend(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        got = (y.detach().cpu().numpy() if torch.is_tensor(y) else np.asarray(y)).astype(np.float32)
    except Exception as e:  # noqa: BLE001
        rec.update(status="exported, run fails", reason=f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}")
        return rec
    if got.shape != expected.shape:
        rec.update(status="runs, shape differs", reason=f"{got.shape} vs PyTorch {expected.shape}")
        return rec
    rec.update(status="ok", max_abs_diff=float(np.abs(got - expected).max()), out_max=float(np.abs(expected).max()))
    return rec


def run_one(fmt: str, cfg: str, imgsz: int, timeout: int, workdir: Path) -> dict:
    """Run ``worker`` for one format in a new interpreter; returns its record (or why it produced none)."""
    out = workdir / f"{fmt}-{Path(cfg).stem}"
    shutil.rmtree(out, ignore_errors=True)  # this script's own scratch folder: a re-run starts it afresh
    out.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--worker", fmt, "--cfg", cfg, "--imgsz", str(imgsz), "--workdir", str(out)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"no result within {timeout} s"}
    lines = [ln[3:] for ln in p.stdout.splitlines() if ln.startswith("@@ ")]
    if not lines:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1][:200]
        return {"status": "crashed", "reason": f"exit {p.returncode}: {tail}"}
    rec = json.loads(lines[-1])
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def table(rows: list[tuple[str, dict, dict | None]], markdown: bool) -> str:
    """Format the results: format, status, max abs diff, note (reason; whether plain yolov5n fails too)."""
    head = ["format", "status", "max abs diff", "note"]
    body = []
    for fmt, rec, base in rows:
        diff = f"{rec['max_abs_diff']:.2e}" if "max_abs_diff" in rec else "-"
        note = rec.get("reason", "")
        if base is not None:
            same = (base["status"], base.get("reason")) == (rec["status"], rec.get("reason"))
            note += " — plain yolov5n: " + ("the same" if same else f"{base['status']}, {base.get('reason', '')}")
        if rec.get("status") == "ok":
            note = f"output max {rec['out_max']:.1f}; export {rec['export_s']} s"
        body.append([fmt, rec["status"], diff, note.replace("|", "/")])
    if markdown:
        return "\n".join(["| " + " | ".join(r) + " |" for r in [head, ["---"] * 4, *body]])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in [head, *body])


def merge(earlier: str, head: str, rows: str, formats: list[str]) -> str:
    """An earlier ``--markdown`` output with this run's rows in place of its rows of ``formats``, in ``FORMATS`` order.

    The earlier description lines stay (a line naming only formats re-run here goes; an unnamed one now reads
    ``Other rows: ...``); this run's is added as ``Rows <formats>: <head>``.
    """
    lines = [ln for ln in earlier.strip().splitlines() if ln.strip()]
    desc = [ln if ln.startswith(("Rows ", "Other rows: ")) else f"Other rows: {ln}" for ln in lines if ln[0] != "|"]
    rerun = {ln for ln in desc if ln.startswith("Rows ") and set(ln[5:].split(": ")[0].split(", ")) <= set(formats)}
    table_lines = [ln for ln in lines if ln.startswith("|")]
    by_fmt = {ln.split("|")[1].strip(): ln for ln in table_lines[2:]}
    by_fmt.update({ln.split("|")[1].strip(): ln for ln in rows.splitlines()[2:]})
    order = sorted(by_fmt, key=lambda f: FORMATS.index(f) if f in FORMATS else len(FORMATS))
    body = "\n".join(table_lines[:2] + [by_fmt[f] for f in order])
    return "\n\n".join([*(ln for ln in desc if ln not in rerun), f"Rows {', '.join(formats)}: {head}", body])


def tool_versions() -> str:
    """Versions of the installed ``TOOLS``, e.g. ``numpy 2.4.6, onnx 1.23.2``."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in TOOLS:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found) or "none of the format tools installed"


def main() -> None:
    """Parse arguments, run every format, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--formats", nargs="*", default=FORMATS, help="format arguments (default: all)")
    p.add_argument("--imgsz", type=int, default=64)
    p.add_argument("--timeout", type=int, default=900, help="seconds per format and model")
    p.add_argument("--workdir", type=Path, default=Path("export_out"), help="scratch folder; each format's subfolder "
                   "is replaced on every run (default export_out)")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("-o", "--output", type=Path, help="also write the table here")
    p.add_argument("--update", type=Path, help="merge the rows into this earlier --markdown output and write it back")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--cfg", default="yolov5n-triplet.yaml", help=argparse.SUPPRESS)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    if a.worker:
        print("@@ " + json.dumps(worker(a.worker, a.cfg, a.imgsz, a.workdir.resolve())), flush=True)
        return
    from ultralytics_triplet.measure import machine

    rows = []
    for fmt in a.formats:
        rec = run_one(fmt, "yolov5n-triplet.yaml", a.imgsz, a.timeout, a.workdir.resolve())
        base = None if rec["status"] == "ok" else run_one(fmt, "yolov5n.yaml", a.imgsz, a.timeout, a.workdir.resolve())
        print(f"{fmt}: {rec}" + (f" | yolov5n: {base}" if base else ""), file=sys.stderr, flush=True)
        rows.append((fmt, rec, base))
    head = (
        f"Export of yolov5n-triplet.yaml (random weights, seed 0) at imgsz {a.imgsz}, CPU only; {machine()}"
        f"; {tool_versions()}"
    )
    text = f"{head}\n\n{table(rows, a.markdown)}"
    print(text)
    if a.output:
        a.output.write_text(text + "\n")
    if a.update:
        a.update.write_text(merge(a.update.read_text(), head, table(rows, markdown=True), a.formats) + "\n")


if __name__ == "__main__":
    main()
