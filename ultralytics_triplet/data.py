"""A tiny synthetic dataset of coloured shapes for offline demos and tests, for every YOLO task.

ultralytics' coco8 and hub weights need the internet; this makes a dataset in a directory in well under a second,
deterministic for a given seed, in ultralytics' layout (``images/{train,val}``, ``labels/{train,val}``, data.yaml;
``{train,val}/<class>/`` for classification). The labels of each task come from the same drawn shapes:

- ``detect``: boxes; ``segment``: the shapes' outlines as polygons (same images as ``detect``);
- ``pose``: three keypoints per shape, the top-centre, bottom-left and bottom-right points of its box (a triangle's
  corners), ``kpt_shape: [3, 3]`` (same images as ``detect``);
- ``obb``: the shapes rotated by a random angle, labelled with their minimum-area rotated rectangles;
- ``classify``: one shape per image, filed under its class name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from ._checks import check_free_dir

TASKS = ("detect", "segment", "pose", "obb", "classify")
KPT_SHAPE, FLIP_IDX = (3, 3), (0, 2, 1)  # pose: 3 keypoints (x, y, visible); a left-right flip swaps the bottom two
CLASSES = ("rectangle", "ellipse", "triangle")


def _outline(cls: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Return the outline of shape ``cls`` filling the pixel box (x0, y0, x1, y1) as an (N, 2) int32 polygon."""
    x0, y0, x1, y1 = box
    if cls == 0:
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.int32)
    if cls == 1:
        return cv2.ellipse2Poly(((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, 10)
    return np.array([((x0 + x1) // 2, y0), (x0, y1), (x1, y1)], np.int32)


def _draw(img: np.ndarray, cls: int, box: tuple[int, int, int, int], color: tuple[int, ...]) -> None:
    """Draw shape ``cls`` filling the pixel box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    if cls == 0:
        cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
    elif cls == 1:
        cv2.ellipse(img, ((x0 + x1) // 2, (y0 + y1) // 2), ((x1 - x0) // 2, (y1 - y0) // 2), 0, 0, 360, color, -1)
    else:
        cv2.fillPoly(img, [_outline(cls, box)], color)


def _rotated(cls: int, box: tuple[int, int, int, int], angle: float) -> np.ndarray:
    """Return the outline of shape ``cls`` rotated by ``angle`` degrees and shrunk to fit the box, as float (N, 2)."""
    x0, y0, x1, y1 = box
    c = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    points = (_outline(cls, box).astype(np.float64) - c) @ rot.T
    fit = min((x1 - x0) / max(np.ptp(points[:, 0]), 1e-6), (y1 - y0) / max(np.ptp(points[:, 1]), 1e-6), 1.0)
    return points * fit + c


def _image(
    rng: np.random.Generator, imgsz: int, max_objects: int, cls_of=None
) -> tuple[np.ndarray, list[tuple[int, tuple[int, int, int, int], tuple[int, ...]]]]:
    """Return one noisy image with 1..max_objects non-overlapping shapes and the shapes (class, pixel box, colour).

    ``cls_of(k)`` replaces the random class of the k-th shape (the random draw still happens, so the stream of
    random numbers, and every other shape, stays the same).
    """
    img = rng.integers(0, 60, (imgsz, imgsz, 3), dtype=np.uint8) + rng.integers(0, 120, 3, dtype=np.uint8)
    shapes, taken = [], np.zeros((imgsz, imgsz), bool)
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
        cls = cls if cls_of is None else cls_of(len(shapes))
        color = tuple(int(c) for c in rng.integers(130, 256, 3))
        shapes.append((cls, (x0, y0, x0 + w - 1, y0 + h - 1), color))
    return img, shapes


def _labels(task: str, img: np.ndarray, shapes: list, imgsz: int, angles: np.random.Generator) -> list[str]:
    """Draw ``shapes`` into ``img`` as ``task`` wants them and return the YOLO label lines."""
    lines = []
    for cls, (x0, y0, x1, y1), color in shapes:
        w, h = x1 - x0 + 1, y1 - y0 + 1
        if task == "obb":
            outline = _rotated(cls, (x0, y0, x1, y1), float(angles.uniform(0, 180)))
            cv2.fillPoly(img, [np.round(outline).astype(np.int32)], color)
            corners = cv2.boxPoints(cv2.minAreaRect(outline.astype(np.float32)))
            lines.append(f"{cls} " + " ".join(f"{v / imgsz:.6f}" for v in np.clip(corners, 0, imgsz).ravel()))
            continue
        _draw(img, cls, (x0, y0, x1, y1), color)
        line = f"{cls} {(x0 + w / 2) / imgsz:.6f} {(y0 + h / 2) / imgsz:.6f} {w / imgsz:.6f} {h / imgsz:.6f}"
        if task == "segment":
            line = f"{cls} " + " ".join(f"{v / imgsz:.6f}" for v in _outline(cls, (x0, y0, x1, y1)).ravel())
        elif task == "pose":
            points = ((x0 + x1) / 2, y0), (x0, y1), (x1, y1)
            line += "".join(f" {x / imgsz:.6f} {y / imgsz:.6f} 2" for x, y in points)
        lines.append(line)
    return lines


def make_shapes_dataset(
    root: str | Path,
    n_train: int = 64,
    n_val: int = 16,
    imgsz: int = 128,
    max_objects: int = 3,
    seed: int = 0,
    task: str = "detect",
) -> Path:
    """Write a synthetic shapes dataset for ``task`` and return what ultralytics' ``data=`` takes.

    Args:
        root (str | Path): Directory to create (must be empty or absent, so nothing is overwritten).
        n_train (int): Number of training images.
        n_val (int): Number of validation images.
        imgsz (int): Side of the square images in pixels.
        max_objects (int): Most shapes per image (at least one each; one for ``classify``).
        seed (int): Seed of the generator; the same seed gives the same files, and the ``detect``, ``segment`` and
            ``pose`` datasets of one seed share their images.
        task (str): One of ``detect``, ``segment``, ``pose``, ``obb``, ``classify``.

    Returns:
        (Path): ``root/data.yaml``, or ``root`` itself for ``classify`` (ultralytics takes the folder there).

    Examples:
        >>> data = make_shapes_dataset("shapes", n_train=32, n_val=8, imgsz=96)
        >>> YOLO("yolov5n-triplet.yaml").train(data=data, epochs=1, imgsz=96)  # doctest: +SKIP
        >>> folder = make_shapes_dataset("shapes-cls", n_train=12, n_val=6, imgsz=64, task="classify")
        >>> YOLO("yolo11n-cls-triplet.yaml").train(data=folder, epochs=1, imgsz=64)  # doctest: +SKIP
    """
    root = Path(root)
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    least = len(CLASSES) if task == "classify" else 1  # every class folder needs an image in each split
    if n_train < least or n_val < least or imgsz < 32 or max_objects < 1:
        raise ValueError(f"need n_train, n_val >= {least}, max_objects >= 1 and imgsz >= 32, got {n_train}, {n_val}, "
                         f"{max_objects}, {imgsz}")
    check_free_dir("root", root)  # nothing is ever overwritten
    rng, angles = np.random.default_rng(seed), np.random.default_rng([seed, 1])  # angles: obb only, own stream
    for split, n in (("train", n_train), ("val", n_val)):
        if task == "classify":
            for name in CLASSES:
                (root / split / name).mkdir(parents=True, exist_ok=True)
        else:
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            if task == "classify":
                img, shapes = _image(rng, imgsz, 1, cls_of=lambda _, i=i: i % len(CLASSES))
                _labels("detect", img, shapes, imgsz, angles)
                cv2.imwrite(str(root / split / CLASSES[shapes[0][0]] / f"{i:05d}.png"), img)
                continue
            img, shapes = _image(rng, imgsz, max_objects)
            lines = _labels(task, img, shapes, imgsz, angles)
            cv2.imwrite(str(root / "images" / split / f"{i:05d}.png"), img)
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    if task == "classify":
        return root
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASSES))
    data = root / "data.yaml"
    path = json.dumps(str(root.resolve()))  # a JSON string is a quoted YAML scalar: safe for '#' or ': ' in paths
    extra = f"kpt_shape: {list(KPT_SHAPE)}\nflip_idx: {list(FLIP_IDX)}\n" if task == "pose" else ""
    data.write_text(f"path: {path}\ntrain: images/train\nval: images/val\n{extra}names:\n{names}\n")
    return data
