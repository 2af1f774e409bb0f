"""The synthetic shapes generator (``ultralytics_triplet.data``): one drawing, labels for every task, consistent with
each other."""

from __future__ import annotations

import numpy as np
import pytest

from ultralytics_triplet.data import CLASSES, KPT_SHAPE, TASKS, make_shapes_dataset

pytestmark = pytest.mark.newest_only


def labels(data, split="train") -> dict[str, list[list[float]]]:
    """Label rows per image stem."""
    folder = data.parent / "labels" / split
    return {p.stem: [[float(v) for v in line.split()] for line in p.read_text().splitlines() if line]
            for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return {t: make_shapes_dataset(root / t, n_train=9, n_val=3, imgsz=64, seed=3, task=t) for t in TASKS}


def test_detect_segment_and_pose_share_images_and_boxes(datasets):
    images = {t: sorted((datasets[t].parent / "images" / "train").iterdir()) for t in ("detect", "segment", "pose")}
    for a, b, c in zip(*images.values()):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes()
    det, seg, pose = (labels(datasets[t]) for t in ("detect", "segment", "pose"))
    assert det.keys() == seg.keys() == pose.keys()
    for stem in det:
        for box, poly, kpt in zip(det[stem], seg[stem], pose[stem]):
            assert box[0] == poly[0] == kpt[0]
            xy = np.array(poly[1:]).reshape(-1, 2)
            assert len(xy) >= 3
            cx, cy, w, h = box[1:]
            assert np.allclose([xy[:, 0].min(), xy[:, 1].min()], [cx - w / 2, cy - h / 2], atol=2 / 64)
            assert np.allclose([xy[:, 0].max(), xy[:, 1].max()], [cx + w / 2, cy + h / 2], atol=2 / 64)
            assert kpt[1:5] == box[1:5] and len(kpt) == 5 + KPT_SHAPE[0] * KPT_SHAPE[1]
            points = np.array(kpt[5:]).reshape(KPT_SHAPE)
            assert (points[:, 2] == 2).all()
            assert (abs(points[:, 0] - cx) <= w / 2 + 1 / 64).all() and (abs(points[:, 1] - cy) <= h / 2 + 1 / 64).all()
    assert "kpt_shape: [3, 3]" in datasets["pose"].read_text()


def test_obb_labels_are_rotated_rectangles_inside_the_image(datasets):
    rows = [r for rs in labels(datasets["obb"]).values() for r in rs]
    assert rows and all(len(r) == 9 and 0 <= r[0] < len(CLASSES) for r in rows)
    corners = np.array([r[1:] for r in rows]).reshape(-1, 4, 2)
    assert ((corners >= 0) & (corners <= 1)).all()
    sides = np.linalg.norm(np.roll(corners, -1, axis=1) - corners, axis=2)
    assert np.allclose(sides[:, 0], sides[:, 2], atol=1e-4) and np.allclose(sides[:, 1], sides[:, 3], atol=1e-4)
    edges = np.roll(corners, -1, axis=1) - corners
    assert np.allclose((edges[:, 0] * edges[:, 1]).sum(-1), 0, atol=1e-4)  # right angles
    tilted = ~np.isclose(edges[:, 0, 0], 0, atol=1e-3) & ~np.isclose(edges[:, 0, 1], 0, atol=1e-3)
    assert tilted.any()  # rotated, not axis-aligned boxes in disguise


def test_classify_folders_hold_every_class_in_each_split(datasets):
    root = datasets["classify"]
    for split, n in (("train", 9), ("val", 3)):
        counts = {c: len(list((root / split / c).glob("*.png"))) for c in CLASSES}
        assert sum(counts.values()) == n and all(counts.values())


def test_same_seed_same_files_and_bad_input_writes_nothing(tmp_path):
    a = make_shapes_dataset(tmp_path / "a", n_train=3, n_val=3, imgsz=64, seed=1, task="obb")
    b = make_shapes_dataset(tmp_path / "b", n_train=3, n_val=3, imgsz=64, seed=1, task="obb")
    files = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*") if p.is_file() and p.name != "data.yaml")
    assert files and all((a.parent / f).read_bytes() == (b.parent / f).read_bytes() for f in files)
    with pytest.raises(ValueError, match="task must be one of"):
        make_shapes_dataset(tmp_path / "c", task="depth")
    with pytest.raises(ValueError, match="n_train, n_val >= 3"):
        make_shapes_dataset(tmp_path / "d", n_train=2, task="classify")
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()
