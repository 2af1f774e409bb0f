"""What a study trains (``ultralytics_triplet.study.variants``): the plain model, its references and each placement
with each module, named by what they are, and the configs the study writes itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ultralytics_triplet.loading import load_model_yaml
from ultralytics_triplet.placements import NAMES as KNOWN_PLACEMENTS
from ultralytics_triplet.study.fingerprint import digest, model_identity
from ultralytics_triplet.study.variants import Role, build_variants, write_configs

pytestmark = pytest.mark.compat


def names(variants) -> list[str]:
    return [v.name for v in variants]


def test_variant_names_follow_the_model_name(tmp_path):
    from ultralytics_triplet.surgery import insert_layers, write_yaml

    variants, _ = build_variants("yolo11n.yaml", KNOWN_PLACEMENTS, tmp_path)
    assert names(variants) == ["yolo11n.yaml", "yolo11n-triplet.yaml", "yolo11n-triplet-neck.yaml",
                               "yolo11n-triplet-dense.yaml"]
    assert [v.placement for v in variants] == [None, *KNOWN_PLACEMENTS]
    assert [v.role for v in variants] == [Role.PLAIN] + [Role.VARIANT] * 3
    from ultralytics.utils.checks import check_yaml

    model = tmp_path / "cfg" / "my-yolov5s.yaml"
    model.parent.mkdir()
    shutil.copy(check_yaml("yolov5.yaml"), model)
    write_yaml(insert_layers(model, after=[2]), model.with_name("my-yolov5s-triplet-neck.yaml"))  # beside it
    variants, _ = build_variants(model, ["triplet-neck", "after:4"], tmp_path / "study")
    assert [v.config for v in variants] == [str(model), str(model.with_name("my-yolov5s-triplet-neck.yaml")),
                                            str((tmp_path / "study" / "models" / "my-yolov5s+TA@4.yaml").resolve())]
    with pytest.raises(ValueError, match="known placements: triplet, triplet-neck, triplet-dense, after:I"):
        build_variants("yolo11n.yaml", ["triplet", "cbam"], tmp_path)
    with pytest.raises(ValueError, match="plain model"):
        build_variants("yolo11n-triplet.yaml", ["triplet"], tmp_path)
    shutil.copy(model, model.with_name("my-yolov5s-triplet.yaml"))
    with pytest.raises(ValueError, match="'triplet' builds the plain model itself"):
        build_variants(model, ["triplet"], tmp_path)


def test_explicit_positions_are_variants_named_by_what_they_are(tmp_path):
    from ultralytics_triplet.surgery import insert_layers

    variants, plain = build_variants("yolov5n.yaml", ["after:6,4", "after:8"], tmp_path)
    assert names(variants) == ["yolov5n.yaml", "yolov5n+TA@4,6.yaml", "yolov5n+TA@8.yaml"]
    assert [v.placement for v in variants[1:]] == ["after:4,6", "after:8"]
    assert variants[1].run_name(2) == "yolov5n+TA@4,6-seed2"
    expected = insert_layers("yolov5n.yaml", after=[4, 6])
    assert variants[1].model["backbone"] == expected["backbone"] and variants[1].model["head"] == expected["head"]
    assert not (tmp_path / "models").exists()  # nothing is written while planning

    write_configs(variants)
    written = Path(variants[1].config)
    assert written.parent == (tmp_path / "models").resolve()
    loaded = load_model_yaml(written)  # as ultralytics loads it: the scale letter is read from the file name
    assert loaded["scale"] == plain["scale"] == "n"
    assert digest(model_identity(loaded)) == variants[1].sha256  # the identity a recorded run must match
    text = written.read_text(encoding="utf-8")
    assert text.count("]  # inserted by ultralytics-triplet") == 2
    mtime = written.stat().st_mtime_ns
    write_configs(variants)  # the same study again: an identical file is left alone
    assert written.stat().st_mtime_ns == mtime


def test_each_backbone_sweeps_every_backbone_position_one_at_a_time(tmp_path):
    variants, plain = build_variants("yolov5n.yaml", ["each-backbone", "triplet-neck"], tmp_path)
    n = len(plain["backbone"])
    assert [v.placement for v in variants[1:n + 1]] == [f"after:{i}" for i in range(n)]
    assert names(variants)[n + 1] == "yolov5n-triplet-neck.yaml"
    for v in variants[1:n + 1]:
        assert len(v.model["backbone"]) == n + 1 and len(v.model["head"]) == len(plain["head"])
    with pytest.raises(ValueError, match=r"'each-backbone \(after:8\)' and 'triplet' build the same model"):
        build_variants("yolov5n.yaml", ["each-backbone", "triplet"], tmp_path)  # triplet is after:8 in yolov5


def test_each_placement_is_built_with_each_module_and_named_by_what_it_is(tmp_path):
    from ultralytics.nn.modules.conv import CBAM
    from ultralytics.nn.tasks import DetectionModel

    from ultralytics_triplet.placements import insertion_points
    from ultralytics_triplet.surgery import model_rows

    variants, plain = build_variants("yolov5n.yaml", ["triplet", "triplet-neck", "after:4"], tmp_path,
                                     modules=["TripletAttention", "CBAM"])
    assert names(variants) == ["yolov5n.yaml", "yolov5n-triplet.yaml", "yolov5n-CBAM.yaml", "yolov5n-triplet-neck.yaml",
                               "yolov5n-CBAM-neck.yaml", "yolov5n+TA@4.yaml", "yolov5n+CBAM@4.yaml"]
    assert [(v.role, v.placement, v.module) for v in variants[1:3]] == [
        (Role.VARIANT, "triplet", "TripletAttention"), (Role.VARIANT, "triplet", "CBAM")]
    for v, rule in ((variants[2], ""), (variants[4], "-neck")):  # the named placements keep their rule
        points = insertion_points(plain, rule)
        inserted = [i for i, row in enumerate(model_rows(v.model)) if row[2] == "CBAM"]
        assert inserted == list(v.inserted) == [p + k + 1 for k, p in enumerate(points)]
        assert all(model_rows(v.model)[i] == [-1, 1, "CBAM", []] for i in inserted)
    write_configs(variants)
    cbam = Path(variants[6].config)
    assert cbam.parent == (tmp_path / "models").resolve()
    text = cbam.read_text(encoding="utf-8")
    assert text.startswith("# yolov5n+CBAM@4.yaml: yolov5n.yaml with CBAM after layer 4 (study placement after:4).\n"
                           "# CBAM: ultralytics.nn.modules.conv.CBAM, registered by plugin 'triplet'.")
    model = DetectionModel(load_model_yaml(cbam), verbose=False)
    assert type(model.model[5]) is CBAM and model.model[5].channel_attention.fc.in_channels == 64
    assert digest(model_identity(load_model_yaml(cbam))) == variants[6].sha256


def test_references_are_plain_models_trained_alike_and_scale_up_is_the_next_scale(tmp_path):
    from ultralytics.utils.checks import check_yaml

    variants, _ = build_variants("yolov5n.yaml", ["triplet"], tmp_path, references=["scale-up", "yolov8n.yaml"])
    assert names(variants) == ["yolov5n.yaml", "yolov5s.yaml", "yolov8n.yaml", "yolov5n-triplet.yaml"]
    assert [(v.role, v.placement, v.module) for v in variants[1:3]] == [(Role.REFERENCE, None, None)] * 2
    assert variants[1].sha256 == digest(model_identity(load_model_yaml("yolov5s.yaml")))
    assert names(build_variants("yolo11m-seg.yaml", ["triplet"], tmp_path, references=["scale-up"])[0])[1] == (
        "yolo11l-seg.yaml")

    model = tmp_path / "cfg" / "my-yolov5s.yaml"  # a config given by path: its next scale is written beside the study
    model.parent.mkdir()
    shutil.copy(check_yaml("yolov5.yaml"), model)
    variants, _ = build_variants(model, ["after:4"], tmp_path / "study", references=["scale-up"])
    assert variants[1].config == str((tmp_path / "study" / "models" / "my-yolov5m.yaml").resolve())
    write_configs(variants)
    loaded = load_model_yaml(variants[1].config)
    assert loaded["scale"] == "m" and digest(model_identity(loaded)) == variants[1].sha256
    assert Path(variants[1].config).read_text().startswith("# my-yolov5m.yaml: my-yolov5s.yaml at scale m")


def test_a_third_party_plugins_module_is_compared_the_same_way(tmp_path):
    from helpers import ChannelPlugin, registered

    with registered(ChannelPlugin(), "gates"):
        variants, _ = build_variants("yolov5n.yaml", ["after:4"], tmp_path, modules=["ChannelGate", "CBAM"])
    assert names(variants) == ["yolov5n.yaml", "yolov5n+ChannelGate@4.yaml", "yolov5n+CBAM@4.yaml"]
    assert "\nChannelGate: helpers.ChannelGate, registered by plugin 'gates'." in variants[1].header
