"""Show what every TripletAttention layer of a model attends to for one image.

Each TripletAttention layer has three sigmoid gates (see :meth:`TripletAttention.gates`); forward hooks capture them
while the model runs on the letterboxed image, and one figure shows, per layer:

- the spatial H–W gate ``hw`` (B, 1, H, W) upsampled and overlaid on the image as a heatmap;
- the C–W gate ``cw`` (B, C, 1, W) as a channel × width map;
- the H–C gate ``hc`` (B, C, H, 1) as a height × channel map.

Examples:
    >>> from ultralytics_triplet.visualize import visualize
    >>> visualize("runs/detect/train/weights/best.pt", "image.jpg", "gates.png", imgsz=320)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from ultralytics.data.augment import LetterBox

from ._checks import check_int, check_output_file
from ._plot import figure
from .loading import load_model
from .nn import TripletAttention

__all__ = ("capture_gates", "letterbox", "visualize")

OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")  # what the figure can be saved as


def letterbox(image: str | Path | np.ndarray, imgsz: int = 640) -> np.ndarray:
    """Read an image (or take a BGR array) and letterbox it to ``imgsz`` × ``imgsz`` as ultralytics' predictor does.

    Returns:
        (np.ndarray): RGB uint8 array of shape (imgsz, imgsz, 3).

    Raises:
        FileNotFoundError: If the image file does not exist.
        ValueError: If the file is not a readable image.
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image '{path}' not found (or not a file)")
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"'{path}' is not a readable image")
    else:
        bgr = np.asarray(image)
        if bgr.ndim == 2:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
    boxed = LetterBox(new_shape=(imgsz, imgsz), auto=False)(image=np.ascontiguousarray(bgr))
    return cv2.cvtColor(boxed, cv2.COLOR_BGR2RGB)


def capture_gates(model: nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Run ``model`` on ``x`` and return, per TripletAttention layer in forward order, its gates.

    Forward hooks call ``module.gates(input)`` for each TripletAttention module; they are removed afterwards.

    Returns:
        (list[dict]): ``name`` (module path), ``index`` (layer index in the YAML, when known), ``shape`` (C, H, W) of
            the layer input and ``gates`` (``cw``, ``hc`` and, unless ``no_spatial``, ``hw``; batch element 0, CPU
            float).

    Raises:
        ValueError: If the model has no TripletAttention layer.
    """
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, TripletAttention)]
    if not layers:
        raise ValueError("the model has no TripletAttention layer to visualize")
    captured: list[dict[str, Any]] = []

    def hook(name: str):
        def fn(module, inputs, output):
            with torch.no_grad():
                gates = module.gates(inputs[0])
            captured.append(
                {
                    "name": name,
                    "index": getattr(module, "i", None),
                    "shape": tuple(inputs[0].shape[1:]),
                    "gates": {k: v[0].detach().float().cpu() for k, v in gates.items()},
                }
            )

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return captured


def visualize(
    model: str | Path | nn.Module, image: str | Path | np.ndarray, out: str | Path, imgsz: int = 640
) -> Path:
    """Draw the gates of every TripletAttention layer of ``model`` for ``image`` into one PNG.

    Args:
        model (str | Path | nn.Module): A ``.pt`` checkpoint, a model YAML (bare names resolve through ultralytics;
            an untrained model shows its initial gates) or a model.
        image (str | Path | np.ndarray): Image file, or a BGR array as OpenCV reads it.
        out (str | Path): Destination image file (``.png`` recommended); parent folders are created.
        imgsz (int): Letterbox size of the model input (a multiple of 32).

    Returns:
        (Path): The written file.

    Raises:
        FileNotFoundError: If the model or image file does not exist.
        ValueError: If an input is unreadable, ``imgsz`` is bad, or the model has no TripletAttention layer.
    """
    check_int("imgsz", imgsz, 32, multiple_of=32)
    out = check_output_file("out", out, OUTPUT_SUFFIXES, force=True)
    rgb = letterbox(image, imgsz)
    net = load_model(model)
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).unsqueeze(0)
    layers = capture_gates(net, x)
    title = Path(str(model)).name if isinstance(model, (str, Path)) else type(model).__name__
    return _draw(rgb, layers, out, title)


def _draw(rgb: np.ndarray, layers: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Lay out one row per layer: image + spatial gate, C–W gate, H–C gate."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator  # lazy, as in _plot: matplotlib loads to draw only

    def colorbar(im, ax):
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.formatter = FormatStrFormatter("%.6g")  # no offset notation: gates are near 0.5 in untrained models
        bar.update_ticks()

    n = len(layers)
    with figure(out, (13.5, 4.0 * n), dpi=100) as fig:
        axes = fig.subplots(n, 3, squeeze=False)
        size = rgb.shape[0]
        for row, layer in zip(axes, layers):
            c, h, w = layer["shape"]
            label = f"layer {layer['index']}" if layer["index"] is not None else layer["name"]
            g = layer["gates"]

            ax = row[0]
            ax.imshow(rgb)
            if "hw" in g:
                hw = g["hw"][0].numpy()  # (H, W)
                up = cv2.resize(hw, (size, size), interpolation=cv2.INTER_LINEAR)
                im = ax.imshow(up, cmap="jet", alpha=0.45)
                colorbar(im, ax)
                ax.set_title(f"{label}: spatial H–W gate ({h}×{w}) on image", fontsize=9)
            else:
                ax.set_title(f"{label}: no spatial gate (no_spatial=True)", fontsize=9)
            ax.set_xlabel("x (pixels)")
            ax.set_ylabel("y (pixels)")

            ax = row[1]
            cw = g["cw"][:, 0, :].numpy()  # (C, W)
            im = ax.imshow(cw, cmap="viridis", aspect="auto", interpolation="nearest")
            colorbar(im, ax)
            ax.set_title(f"{label}: C–W gate ({c} channels × {w} columns)", fontsize=9)
            ax.set_xlabel("width (W)")
            ax.set_ylabel("channel (C)")

            ax = row[2]
            hc = g["hc"][:, :, 0].numpy().T  # (C, H) -> (H, C)
            im = ax.imshow(hc, cmap="viridis", aspect="auto", interpolation="nearest")
            colorbar(im, ax)
            ax.set_title(f"{label}: H–C gate ({h} rows × {c} channels)", fontsize=9)
            ax.set_xlabel("channel (C)")
            ax.set_ylabel("height (H)")
            for a in row[1:]:
                a.xaxis.set_major_locator(MaxNLocator(integer=True))
                a.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(f"TripletAttention gates of {title} (sigmoid outputs; {n} layer{'s' * (n > 1)})", fontsize=11)
    return out
