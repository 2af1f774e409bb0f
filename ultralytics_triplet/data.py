"""A tiny synthetic detection dataset (coloured shapes, YOLO labels) for offline demos and tests.

ultralytics' coco8 and hub weights need the internet; this makes a dataset in a directory in well under a second,
deterministic for a given seed, in ultralytics' layout (``images/{train,val}``, ``labels/{train,val}``, data.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("rectangle", "ellipse", "triangle")


def _draw(img: np.ndarray, cls: int, box: tuple[int, int, int, int], color: tuple[int, ...]) -> None:
    """Draw shape ``cls`` filling the pixel box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    if cls == 0:
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
    elif cls == 1:
        cv2.ellipse(img, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, color, -1)
    else:
        cv2.fillPoly(img, [np.array([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], np.int32)], color)


def _image(rng: np.random.Generator, imgsz: int, max_objects: int) -> tuple[np.ndarray, list[str]]:
    """Return one noisy image with 1..max_objects non-overlapping shapes and its YOLO label lines."""
    img = rng.integers(0, 60, (imgsz, imgsz, 3), dtype=np.uint8) + rng.integers(0, 120, 3, dtype=np.uint8)
    lines, taken = [], np.zeros((imgsz, imgsz), bool)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            w, h = (int(v) for v in rng.integers(imgsz // 8, imgsz // 3, 2))
            x0, y0 = int(rng.integers(0, imgsz - w)), int(rng.integers(0, imgsz - h))
            if not taken[y0 : y0 + h, x0 : x0 + w].any():
                break
        else:
            continue
        taken[y0 : y0 + h, x0 : x0 + w] = True
        cls = int(rng.integers(len(CLASSES)))
        _draw(img, cls, (x0, y0, x0 + w - 1, y0 + h - 1), tuple(int(c) for c in rng.integers(130, 256, 3)))
        lines.append(f"{cls} {(x0 + w / 2) / imgsz:.6f} {(y0 + h / 2) / imgsz:.6f} {w / imgsz:.6f} {h / imgsz:.6f}")
    return img, lines


def make_shapes_dataset(
    root: str | Path, n_train: int = 64, n_val: int = 16, imgsz: int = 128, max_objects: int = 3, seed: int = 0
) -> Path:
    """Write a synthetic shapes detection dataset and return the path of its data.yaml.

    Args:
        root (str | Path): Directory to create (must be empty or absent, so nothing is overwritten).
        n_train (int): Number of training images.
        n_val (int): Number of validation images.
        imgsz (int): Side of the square images in pixels.
        max_objects (int): Most shapes per image (at least one each).
        seed (int): Seed of the generator; the same seed gives the same files.

    Returns:
        (Path): ``root/data.yaml``, usable as ``model.train(data=...)``.

    Examples:
        >>> data = make_shapes_dataset("shapes", n_train=32, n_val=8, imgsz=96)
        >>> YOLO("yolov5n-triplet.yaml").train(data=data, epochs=1, imgsz=96)  # doctest: +SKIP
    """
    root = Path(root)
    if n_train < 1 or n_val < 1 or imgsz < 32 or max_objects < 1:
        raise ValueError(f"need n_train, n_val, max_objects >= 1 and imgsz >= 32, got {n_train}, {n_val}, "
                         f"{max_objects}, {imgsz}")
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; choose a new directory for the shapes dataset")
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img, lines = _image(rng, imgsz, max_objects)
            cv2.imwrite(str(root / "images" / split / f"{i:05d}.png"), img)
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    data = root / "data.yaml"
    path = json.dumps(str(root.resolve()))  # a JSON string is a quoted YAML scalar: safe for '#' or ': ' in paths
    data.write_text(f"path: {path}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data
