"""The ``ultralytics-triplet`` command as a user runs it: every subcommand through the installed console script in a
fresh process, and what it writes used by ultralytics (restricted loading, the `yolo` CLI)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from helpers import IMGSZ, cli, run, run_python, script

pytestmark = pytest.mark.compat


# -------------------------------------------------------------------------------------------------------------- parser


@pytest.mark.parametrize("command", [None, "insert", "transfer", "compare", "visualize", "plugins"])
def test_help(command, tmp_path):
    p = run([*cli(), *([command] if command else []), "--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: ultralytics-triplet{' ' + command if command else ''}")
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------------------------------------------------- insert


def test_insert_writes_a_buildable_commented_yaml(tmp_path):
    out = tmp_path / "yolov8n-ta.yaml"
    p = run([*cli(), "insert", "yolov8n.yaml", "--after", "4", "6", "8", "-o", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "new rows 5, 8, 11" in p.stdout + p.stderr
    text = out.read_text()
    assert text.count("# inserted by ultralytics-triplet") == 3
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from ultralytics_triplet import TripletAttention

    model = DetectionModel(yaml_model_load(str(out)), verbose=False)
    assert [i for i, m in enumerate(model.model) if isinstance(m, TripletAttention)] == [5, 8, 11]
    assert yaml.safe_load(text)["head"][1] == [[-1, 8], 1, "Concat", [1]]  # P4 skip now reads the inserted row


# ------------------------------------------------------------------------------------------------------------ transfer


@pytest.fixture(scope="module")
def transferred(base_pt, tmp_path_factory) -> Path:
    """``ultralytics-triplet transfer base.pt yolov5n-triplet.yaml -o out.pt`` in a fresh process."""
    out = tmp_path_factory.mktemp("transfer") / "yolov5n-triplet.pt"
    p = run([*cli(), "transfer", str(base_pt), "yolov5n-triplet.yaml", "-o", str(out)], out.parent)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    n = len(torch.load(base_pt, map_location="cpu", weights_only=False)["model"].state_dict())
    assert f"Transferred {n}/{n + 18} target tensors" in p.stdout + p.stderr  # all but the new layer's 18
    return out


def test_transfer_writes_an_ultralytics_checkpoint_with_the_base_weights(base_pt, transferred):
    from ultralytics_triplet import TripletAttention

    base = torch.load(base_pt, map_location="cpu", weights_only=False)["model"]
    ckpt = torch.load(transferred, map_location="cpu", weights_only=False)
    model = ckpt["model"]
    assert {"date", "version", "model", "train_args"} <= set(ckpt)
    assert ckpt["train_args"]["task"] == "detect" and ckpt["epoch"] == -1
    assert isinstance(model.model[9], TripletAttention) and len(model.model) == len(base.model) + 1
    assert model.names == base.names and model.yaml["nc"] == 3
    for i, layer in enumerate(base.model):  # every base layer's tensors, bit for bit, one row later from 9 on
        target = model.model[i + (i >= 9)].state_dict()
        for k, v in layer.state_dict().items():
            assert torch.equal(target[k], v), f"layer {i} {k}"
    assert next(model.parameters()).dtype == torch.float16  # the base's dtype: nothing rounded


def test_transfer_checkpoint_loads_in_yolo_with_restricted_loading(transferred, tmp_path):
    code = (f"from ultralytics import YOLO; m = YOLO({str(transferred)!r});"
            "print(m.task, type(m.model.model[9]).__name__, len(m.names))")
    p = run_python(code, tmp_path, ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split()[-3:] == ["detect", "TripletAttention", "3"]


@pytest.mark.slow
def test_transferred_checkpoint_trains_with_the_yolo_cli(transferred, shapes_data, tmp_path):
    cmd = [script("yolo"), "detect", "train", f"model={transferred}", f"data={shapes_data}", f"project={tmp_path}",
           "name=ft", "epochs=1", f"imgsz={IMGSZ}", "batch=8", "workers=0", "device=cpu", "plots=False"]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    loaded = re.search(r"Transferred (\d+)/(\d+) items from pretrained weights", p.stdout + p.stderr)
    assert loaded and loaded.group(1) == loaded.group(2), "the checkpoint's weights were not all loaded"
    best = torch.load(tmp_path / "ft" / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert type(best["model"].model[9]).__name__ == "TripletAttention"


# ------------------------------------------------------------------------------------------------- compare / visualize


def test_compare_prints_a_table_and_writes_a_chart(tmp_path):
    chart = tmp_path / "chart.png"
    cmd = [*cli(), "compare", "yolov5n.yaml", "yolov5n-triplet.yaml", "--imgsz", "64", "--runs", "2", "-o", str(chart)]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    row = next(line for line in out.splitlines() if line.startswith("parameters"))
    assert "+300" in row
    assert "GFLOPs @64" in out and "CPU latency ms (median of 2, 1 thread)" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_visualize_writes_a_picture(transferred, shapes_data, tmp_path):
    image = sorted((shapes_data.parent / "images" / "val").iterdir())[0]
    out = tmp_path / "gates.png"
    p = run([*cli(), "visualize", str(transferred), str(image), "-o", str(out), "--imgsz", str(IMGSZ)], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------------------- plugins


def test_plugins_prints_one_line_per_fact_and_the_same_as_json(tmp_path):
    import json

    import ultralytics
    from ultralytics.nn.modules import CBAM

    from ultralytics_triplet import __version__
    from ultralytics_triplet._compat import supported_range
    from ultralytics_triplet.builtin import CFG_DIR

    cbam = f"{CBAM.__module__}.{CBAM.__qualname__}"  # the built-in plugin registers ultralytics' own class
    p = run([*cli(), "plugins"], tmp_path)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == f"ultralytics-triplet {__version__}"
    assert lines[1] == (f"ultralytics {ultralytics.__version__}: supported (this package supports "
                        f"ultralytics{supported_range()})")
    assert "ultralytics patched: yes" in lines and "plugin: triplet" in lines
    assert "module: TripletAttention (ultralytics_triplet.nn.TripletAttention) from plugin triplet" in lines
    assert f"module: CBAM ({cbam}) from plugin triplet, built with its input channel count" in lines
    assert f"model directory: {CFG_DIR} from plugin triplet" in lines
    generated = [line for line in lines if line.startswith("generated configs: ")]
    assert len(generated) == 1 and "ultralytics-triplet" in generated[0]

    p = run([*cli(), "plugins", "--json"], tmp_path)
    assert p.returncode == 0, p.stderr
    facts = json.loads(p.stdout)
    assert facts["patched"] is True and facts["disabled"] is False and facts["version"] == __version__
    assert facts["ultralytics"] == {"version": ultralytics.__version__, "supported": supported_range(), "ok": True}
    assert facts["modules"] == [
        {"name": "TripletAttention", "class": "ultralytics_triplet.nn.TripletAttention", "plugin": "triplet",
         "takes_channels": False},
        {"name": "CBAM", "class": cbam, "plugin": "triplet", "takes_channels": True},
    ]
    assert {"path": str(CFG_DIR), "plugin": "triplet"} in facts["model_dirs"]
    assert facts["generated_configs"] == generated[0].split(": ", 1)[1]
    assert not list(tmp_path.iterdir())  # it only reads


def test_plugins_says_when_the_environment_disables_the_patch(tmp_path):
    p = run([*cli(), "plugins"], tmp_path, ULTRALYTICS_TRIPLET_DISABLE="1")
    assert p.returncode == 0, p.stderr
    assert "ultralytics patched: no (disabled by ULTRALYTICS_TRIPLET_DISABLE)" in p.stdout.splitlines()
