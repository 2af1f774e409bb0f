"""YAML surgery (``ultralytics_triplet.surgery``): inserting layers rewires every consumer, on every stock config, and
the written YAML round-trips."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from helpers import CFG_DIR
from helpers import run_model as run
from torch import nn
from ultralytics.nn.tasks import (
    ClassificationModel,
    DetectionModel,
    OBBModel,
    PoseModel,
    SegmentationModel,
    guess_model_task,
    parse_model,
    yaml_model_load,
)

from ultralytics_triplet.nn import TripletAttention
from ultralytics_triplet.surgery import INSERTED_COMMENT, insert_layers, insert_layers_with_rows, write_yaml

pytestmark = [pytest.mark.newest_only, pytest.mark.usefixtures("one_thread")]  # the machine is shared, models tiny


def load_yaml(path):
    """ultralytics' own YAML reader (imported here: ultralytics 8.3 has no ``ultralytics.utils.YAML``)."""
    from ultralytics.utils import YAML

    return YAML.load(path)


TASK_MODEL = {
    "detect": DetectionModel,
    "segment": SegmentationModel,
    "pose": PoseModel,
    "obb": OBBModel,
    "classify": ClassificationModel,
}


TA_PARAMS = 300  # 3 gates x (2*7*7 conv + 2 BN affine)


def cfg_available(name: str) -> bool:
    """Whether the installed ultralytics ships the (unscaled) model YAML behind ``name``."""
    import re

    stem = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", Path(name).stem)
    return any(CFG_DIR.rglob(f"{stem}.yaml")) or any(CFG_DIR.rglob(Path(name).name))


def sources(d: dict) -> list[list[int]]:
    """Each row's absolute source layers (-1 for the image), resolved as BaseModel._predict_once does."""
    out = []
    for i, (f, *_rest) in enumerate(d["backbone"] + d["head"]):
        out.append([x if x >= 0 or i == 0 else i + x for x in (f if isinstance(f, list) else [f])])
    return out


def build(d: dict) -> nn.Module:
    """Build a model dict with the ultralytics model class of its task."""
    return TASK_MODEL[guess_model_task(d)](copy.deepcopy(d), verbose=False)


def n_params(m: nn.Module) -> int:
    """Parameter count."""
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------------- insert_layers


def test_insert_rewires_every_later_consumer():
    """Hand-checked: YOLOv5 with TripletAttention after SPPF (layer 9), the backbone's last row."""
    d, rows = insert_layers_with_rows("yolov5n.yaml", after=[9])
    assert rows == [10]
    assert d["backbone"][-2][2] == "SPPF"
    assert d["backbone"][-1] == [-1, 1, "TripletAttention", []]
    assert len(d["backbone"]) == 11
    assert [r[0] for r in d["head"]] == [
        -1,  # 11 Conv reads the attention output through -1
        -1,
        [-1, 6],  # Concat with backbone P4: layer 6 did not move
        -1,
        -1,
        -1,
        [-1, 4],
        -1,  # 18 (was 17, P3 out)
        -1,
        [-1, 15],  # was [-1, 14]
        -1,  # 21 (was 20)
        -1,
        [-1, 11],  # was [-1, 10]: the head Conv moved from 10 to 11
        -1,  # 24 (was 23)
        [18, 21, 24],  # Detect, was [17, 20, 23]
    ]
    assert [r[1:] for r in d["head"]] == [r[1:] for r in yaml_model_load("yolov5n.yaml")["head"]]


def test_insert_redirects_explicit_consumers_to_the_new_row():
    """Inserting after a layer read by a later Concat and by Detect makes both read the inserted row."""
    d, rows = insert_layers_with_rows("yolov8n.yaml", after=[6, 15])
    assert rows == [7, 17]
    rows_all = d["backbone"] + d["head"]
    assert rows_all[12][0] == [-1, 7]  # Concat that read layer 6 (backbone P4) now reads the attention after it
    assert rows_all[15][0] == [-1, 4]  # layer 4 did not move and has no attention
    assert rows_all[17] == [-1, 1, "TripletAttention", []]
    assert rows_all[-1][0] == [17, 20, 23]  # Detect: P3 through attention; P4, P5 shifted by two
    assert len(d["backbone"]) == 11 and rows_all[7][2] == "TripletAttention"


def test_insert_rewrites_negative_indices_other_than_minus_one():
    """YOLOv3's `[-2, ...]` rows keep pointing at the same layer, or at the attention inserted after it."""
    orig = sources(yaml_model_load("yolov3.yaml"))
    assert orig[16] == [14] and orig[23] == [21]
    d = insert_layers("yolov3.yaml", after=[15])  # between row 16 and the layer its -2 reads
    rows = d["backbone"] + d["head"]
    assert rows[17][0] == -3 and sources(d)[17] == [14]
    d = insert_layers("yolov3.yaml", after=[14])  # the layer row 16's -2 reads
    rows = d["backbone"] + d["head"]
    assert rows[15][2] == "TripletAttention" and rows[17][0] == -2 and sources(d)[17] == [15]


def test_insert_handles_synthetic_negative_and_list_sources():
    """A hand-made dict with -2 and -3 inside lists and an absolute index in a head list."""
    cfg = {
        "nc": 2,
        "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "Conv", [8, 3, 1]], [-1, 1, "Conv", [8, 3, 1]]],
        "head": [[[-1, -2, -3], 1, "Concat", [1]], [[0, 3], 1, "Concat", [1]], [-1, 1, "Classify", ["nc"]]],
    }
    before = copy.deepcopy(cfg)
    d, rows = insert_layers_with_rows(cfg, after=[0, 2], args=[8])
    assert cfg == before  # never mutated
    assert rows == [1, 4]
    assert d["backbone"] == [
        [-1, 1, "Conv", [8, 3, 2]],
        [-1, 1, "TripletAttention", [8]],
        [-1, 1, "Conv", [8, 3, 1]],
        [-1, 1, "Conv", [8, 3, 1]],
        [-1, 1, "TripletAttention", [8]],
    ]
    # Concat (now 5) read 2, 1, 0 -> 4 (attention after 2), 2 (layer 1 moved), 1 (attention after 0)
    assert d["head"][0][0] == [-1, -3, -4]
    assert sources(d)[5] == [4, 2, 1]
    assert d["head"][1][0] == [1, 5]  # [0, 3]: attention after 0, and the Concat


def test_insert_matches_original_graph_on_every_stock_yaml():
    """For every stock model YAML: dropping the inserted rows gives back the original wiring."""
    names = sorted(p for p in CFG_DIR.rglob("*.yaml"))
    assert names
    for path in names:
        orig = yaml_model_load(path)
        n = len(orig["backbone"] + orig["head"])
        after = sorted({0, len(orig["backbone"]) - 1, n - 2})
        d, rows = insert_layers_with_rows(path, after=after)
        assert len(d["backbone"] + d["head"]) == n + len(after), path
        assert len(d["backbone"]) == len(orig["backbone"]) + sum(j < len(orig["backbone"]) for j in after)
        src, keep = sources(d), [i for i in range(n + len(after)) if i not in rows]
        for r, j in zip(rows, after):
            assert src[r] == [keep[j]], path  # the new row reads layer j
        collapse = {r: keep[j] for r, j in zip(rows, after)}  # reading a new row = reading the layer before it
        old_of = {new: old for old, new in enumerate(keep)}
        tapped = {keep[j] for j in after}
        for old, new in enumerate(keep):
            got = [old_of[collapse.get(x, x)] if x >= 0 else x for x in src[new]]
            assert got == sources(orig)[old], (path, old)
            assert not tapped & set(src[new]), (path, old)  # no original consumer still reads around the attention


def test_insert_keeps_scale_and_names_a_triplet_yaml():
    """The scale letter from the name survives; the source name gets a -triplet suffix; other keys are kept."""
    d = insert_layers("yolov8s.yaml", after=4)
    assert d["scale"] == "s" and d["yaml_file"] == "yolov8s-triplet.yaml"
    assert d["scales"] == yaml_model_load("yolov8s.yaml")["scales"] and d["nc"] == 80
    assert insert_layers("yolov8.yaml", after=4)["scale"] == ""
    assert insert_layers(CFG_DIR / "v8" / "yolov8.yaml", after=[4])["backbone"][5][2] == "TripletAttention"


@pytest.mark.parametrize(
    "after, match",
    [
        ([], "empty"),
        (["4"], "not an int"),
        ([True], "not an int"),
        ([4.0], "not an int"),
        ([-1], "out of range"),
        ([22], "out of range"),  # the Detect head
        ([99], "out of range"),
        ([4, 6, 4], "listed twice"),
        ("4", "must be an int"),
        (None, "must be an int"),
    ],
)
def test_insert_rejects_bad_indices_with_one_line_naming_the_range(after, match):
    """Bad `after` values raise one-line ValueErrors that state the valid range."""
    with pytest.raises(ValueError, match=match) as e:
        insert_layers("yolov8n.yaml", after=after)
    assert "0..21" in str(e.value) and "\n" not in str(e.value)


def test_insert_rejects_bad_cfg_and_module():
    """Missing YAMLs, wrong suffixes, malformed dicts and unknown modules fail clearly."""
    with pytest.raises(FileNotFoundError, match="not found"):
        insert_layers("no-such-model.yaml", after=[1])
    with pytest.raises(FileNotFoundError, match="not found"):
        insert_layers("/tmp/no/such/dir/model.yaml", after=[1])
    with pytest.raises(ValueError, match=r"\.yaml or \.yml"):
        insert_layers("yolov8n.pt", after=[1])
    with pytest.raises(ValueError, match="'head' list"):
        insert_layers({"backbone": []}, after=[1])
    with pytest.raises(ValueError, match="does not point at an earlier layer"):
        insert_layers({"backbone": [[-1, 1, "Conv", [8]], [5, 1, "Conv", [8]]], "head": []}, after=[0])
    with pytest.raises(ValueError, match="args must be a list"):
        insert_layers("yolov8n.yaml", after=[1], args="7")
    with pytest.raises(ValueError, match="unknown module 'NoSuchBlock'"):
        insert_layers("yolov8n.yaml", after=[1], module="NoSuchBlock")
    assert insert_layers("yolov8n", after=[1])["scale"] == "n"  # a bare name means the YAML


MODELS = [
    pytest.param("yolov3.yaml", marks=pytest.mark.slow),  # 100M parameters
    "yolov3-tiny.yaml",
    "yolov5n.yaml",
    "yolov5n-p6.yaml",
    "yolov8n.yaml",
    "yolov8n-seg.yaml",
    "yolov8n-pose.yaml",
    "yolov8n-obb.yaml",
    "yolov8n-cls.yaml",
    pytest.param("yolov9c.yaml", marks=pytest.mark.slow),
    "yolov9t.yaml",
    "yolov10n.yaml",
    "yolo11n.yaml",
    "yolo11n-seg.yaml",
    "yolo12n.yaml",
    "yolo26n.yaml",
    "yolo26n-pose.yaml",
]


@pytest.mark.parametrize("name", MODELS)
def test_inserted_model_builds_runs_and_adds_300_params_per_insertion(name):
    """Each stock YAML with insertions in backbone and head builds with its task model and runs at imgsz 64."""
    if not cfg_available(name):
        pytest.skip(f"{name} is not shipped by this ultralytics")
    orig = yaml_model_load(name)
    nb, n = len(orig["backbone"]), len(orig["backbone"] + orig["head"])
    after = sorted({1, nb - 1, min(nb + 1, n - 2)})
    d, rows = insert_layers_with_rows(name, after=after)
    model = build(d)
    base = n_params(parse_model(copy.deepcopy(orig), ch=3, verbose=False)[0])
    assert n_params(model) == base + TA_PARAMS * len(after)
    assert [type(model.model[i]) for i in rows] == [TripletAttention] * len(after)
    assert all(model.model[i].type.endswith("TripletAttention") for i in rows)
    out = run(model, torch.rand(1, 3, 64, 64))
    assert out and all(torch.isfinite(t).all() for t in out)


# ---------------------------------------------------------------------------------------------------------- write_yaml


def test_write_yaml_marks_inserted_rows_and_round_trips(tmp_path):
    """The written YAML loads back to the same model; exactly the inserted rows carry the comment."""
    d, rows = insert_layers_with_rows("yolov8n.yaml", after=[4, 9, 15])
    path = write_yaml(d, tmp_path / "yolov8n-ta.yaml", rows, header="YOLOv8 with Triplet Attention")
    text = path.read_text()
    assert text.startswith("# YOLOv8 with Triplet Attention\n")
    marked = [ln for ln in text.splitlines() if INSERTED_COMMENT in ln]
    assert len(marked) == 3 and all("TripletAttention" in ln for ln in marked)
    back = load_yaml(path)
    assert back == {k: v for k, v in d.items() if k not in ("scale", "yaml_file")}
    loaded = yaml_model_load(path)
    assert loaded["scale"] == "n"
    assert n_params(DetectionModel(loaded, verbose=False)) == n_params(DetectionModel(d, verbose=False))


def test_write_yaml_refuses_to_overwrite_unless_forced(tmp_path):
    """An existing file is kept unless force=True; a non-YAML name is refused."""
    d, rows = insert_layers_with_rows("yolov5n.yaml", after=[9])
    path = tmp_path / "yolov5n-ta.yaml"
    path.write_text("keep me\n")
    with pytest.raises(FileExistsError, match="force=True"):
        write_yaml(d, path, rows)
    assert path.read_text() == "keep me\n"
    write_yaml(d, path, rows, force=True)
    assert load_yaml(path)["backbone"][-1] == [-1, 1, "TripletAttention", []]
    with pytest.raises(ValueError, match=r"\.yaml or \.yml"):
        write_yaml(d, tmp_path / "model.txt", rows)
    with pytest.raises(ValueError, match=r"valid indices are 0\.\.25"):
        write_yaml(d, tmp_path / "other.yaml", [26])
    assert not (tmp_path / "other.yaml").exists()


def test_write_yaml_round_trips_every_stock_yaml(tmp_path):
    """Every stock model YAML (activation strings, kpt_shape, end2end, text_model, ...) survives write + load."""
    for i, path in enumerate(sorted(CFG_DIR.rglob("*.yaml"))):
        d, rows = insert_layers_with_rows(path, after=[0])
        out = write_yaml(d, tmp_path / f"{i}-{path.name}", rows)
        assert load_yaml(out) == {k: v for k, v in d.items() if k not in ("scale", "yaml_file")}, path


def test_write_yaml_warns_when_the_file_name_loses_the_scale(tmp_path):
    """ultralytics reads the scale from the file name, so a name without it earns a warning."""
    d, rows = insert_layers_with_rows("yolov8s.yaml", after=[9])
    with pytest.warns(UserWarning, match="scale 's'"):
        write_yaml(d, tmp_path / "custom.yaml", rows)
