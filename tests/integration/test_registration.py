"""The registry where only a fresh process shows it: threads racing through the first plugin load, and entry-point
plugins that are broken, clashing or misspelled."""

from __future__ import annotations

import pytest
from helpers import IMGSZ, run, run_python, said, script

from ultralytics_triplet.loading import load_checkpoint
from ultralytics_triplet.surgery import insert_layers, write_yaml

pytestmark = pytest.mark.compat


def test_two_threads_building_models_first_thing_in_a_process_agree(tmp_path):
    # A fresh process, so both threads race through the lazy plugin load and the first registry sync.
    code = (
        "import threading; from ultralytics.nn.tasks import DetectionModel, yaml_model_load;"
        "barrier, counts = threading.Barrier(2), [];"
        "build = lambda: (barrier.wait(), counts.append(sum(p.numel() for p in "
        "DetectionModel(yaml_model_load('yolov5n-triplet.yaml'), verbose=False).parameters())));"
        "threads = [threading.Thread(target=build) for _ in range(2)]; [t.start() for t in threads];"
        "[t.join() for t in threads]; print('@@', counts);"
        "print('@@', sum(p.numel() for p in "
        "DetectionModel(yaml_model_load('yolov5n.yaml'), verbose=False).parameters()))"
    )
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr
    counts, stock = said(p)
    assert counts == str([int(stock) + 300] * 2)  # both threads built the full triplet model


@pytest.fixture
def installed_plugins(tmp_path):
    """A directory that, on PYTHONPATH, looks like two installed third-party plugins: one broken, one clashing."""
    site = tmp_path / "plugins"
    dist = site / "fake_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[ultralytics_triplet]\nbroken = broken_plugin\nclashing = clashing_plugin\ntypo = typo_plugin\n")
    (site / "typo_plugin.py").write_text(
        "from ultralytics_triplet import hookimpl\n@hookimpl\ndef register_module():  # missing the s\n    return []\n")
    (site / "broken_plugin.py").write_text("raise ImportError('this plugin is broken')\n")
    (site / "clashing_plugin.py").write_text(
        "from torch import nn\nfrom ultralytics_triplet import hookimpl\n"
        "class TripletAttention(nn.Module):\n    pass\n"
        "class Doubler(nn.Module):\n    def forward(self, x):\n        return 2 * x\n"
        "@hookimpl\ndef register_modules():\n    return [TripletAttention, Doubler]\n")
    return site


def test_broken_clashing_and_misspelled_entry_point_plugins_cost_a_warning_each(installed_plugins, tmp_path):
    code = ("from ultralytics import YOLO; m = YOLO('yolov5n-triplet.yaml');"
            "import ultralytics.nn.tasks as t; print('@@', type(m.model.model[9]).__module__, hasattr(t, 'Doubler'))")
    p = run_python(code, tmp_path, PYTHONPATH=str(installed_plugins))
    assert p.returncode == 0, p.stderr
    assert said(p) == ["ultralytics_triplet.nn True"]  # ours kept, the clashing plugin's other module loaded
    log = p.stdout + p.stderr
    assert "plugin 'broken' (broken_plugin) failed to load and was skipped: ImportError: this plugin is broken" in log
    assert "'TripletAttention' from plugin 'clashing'" in log and "keeping 'triplet'" in log
    assert "plugin 'typo' (typo_plugin) failed to load and was skipped" in log and "register_module" in log


def test_plugins_variable_limits_which_plugins_load(installed_plugins, tmp_path):
    code = "import ultralytics_triplet as u; print('@@', sorted(set(u.registry().owners.values())))"
    p = run_python(code, tmp_path, PYTHONPATH=str(installed_plugins), ULTRALYTICS_TRIPLET_PLUGINS="clashing")
    assert p.returncode == 0, p.stderr
    assert said(p) == ["['clashing', 'triplet']"] and "broken" not in p.stdout + p.stderr


@pytest.mark.slow
def test_a_cbam_row_builds_at_scales_n_and_l_in_a_fresh_process_and_through_the_yolo_cli(shapes_data, tmp_path):
    """A user's YAML with ultralytics' CBAM in it, named with a scale letter as ultralytics resolves it."""
    write_yaml(insert_layers("yolov5.yaml", after=[4], module="CBAM"), tmp_path / "yolov5-cbam.yaml")
    code = ("from ultralytics import YOLO\nfor s in 'nl':\n    m = YOLO(f'yolov5{s}-cbam.yaml').model.model\n"
            "    print('@@', type(m[5]).__module__, type(m[5]).__name__, m[4].cv3.conv.out_channels, "
            "m[5].channel_attention.fc.in_channels)")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == ["ultralytics.nn.modules.conv CBAM 64 64", "ultralytics.nn.modules.conv CBAM 256 256"]
    for scale, channels in (("n", 64), ("l", 256)):
        p = run([script("yolo"), "detect", "train", f"model=yolov5{scale}-cbam.yaml", f"data={shapes_data}",
                 "epochs=1", f"imgsz={IMGSZ}", "batch=8", "workers=0", "device=cpu", "plots=False", "val=False",
                 f"project={tmp_path / 'runs'}", f"name={scale}", "exist_ok=True"], tmp_path)
        assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
        model = load_checkpoint(tmp_path / "runs" / scale / "weights" / "last.pt")[0].model
        assert type(model[5]).__name__ == "CBAM" and model[5].channel_attention.fc.in_channels == channels


@pytest.mark.parametrize("first", ["from ultralytics import YOLO", "from ultralytics.engine.exporter import Exporter"],
                         ids=["model-first", "exporter-first"])
def test_the_exporter_is_wrapped_once_imported_whichever_ultralytics_module_comes_first(first, tmp_path):
    # Importing the exporter first imports ultralytics.nn.tasks half-way through it: the patch then waits for the
    # exporter's import to complete (the next import after it), and says nothing about a missing export_openvino.
    (tmp_path / "next_module.py").write_text("")
    code = (f"{first}; import next_module; from ultralytics.engine.exporter import Exporter;"
            "from ultralytics_triplet._compat import MARK, original;"
            "print('@@', getattr(Exporter.export_openvino, MARK, False),"
            " getattr(original(Exporter.export_openvino), MARK, False))")
    p = run_python(code, tmp_path)  # python -c finds next_module in its working directory
    assert p.returncode == 0, p.stderr
    assert said(p) == ["True False"]  # wrapped, and once
    assert "export_openvino" not in p.stderr + p.stdout
