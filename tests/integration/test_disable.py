"""``ULTRALYTICS_TRIPLET_DISABLE=1`` holds for the whole process: library calls never patch ultralytics.

A call either works without ultralytics knowing the registered names (YAML algebra on a dict, the module itself, the
synthetic data), or fails with one line that says to call ``ultralytics_triplet.register()``; only ``register()``
patches.
"""

from __future__ import annotations

import pytest
from helpers import run_python, said

pytestmark = pytest.mark.compat

CODE = r"""
import torch, yaml
import ultralytics.nn.tasks as tasks
from ultralytics.utils.checks import check_yaml
import ultralytics_triplet as ut
from ultralytics_triplet._compat import NotRegisteredError, is_patched
from ultralytics_triplet.compare import compare_models
from ultralytics_triplet.visualize import visualize

def untouched():
    return (not is_patched(tasks) and "TripletAttention" not in vars(tasks)
            and not hasattr(tasks.BaseModel.load, "_ultralytics_triplet") and tasks.check_yaml is check_yaml)

plain = tasks.DetectionModel(yaml.safe_load(open(check_yaml("yolov8.yaml"))) | {"scale": "n"}, verbose=False)
torch.save({"model": plain}, "base.pt")
data = ut.make_shapes_dataset("shapes", n_train=2, n_val=2, imgsz=64)
image = sorted((data.parent / "images" / "val").iterdir())[0]
calls = {
    "insert_layers(dict)": lambda: ut.insert_layers(yaml.safe_load(open(check_yaml("yolov8.yaml"))), after=[4]),
    "TripletAttention": lambda: ut.TripletAttention()(torch.rand(1, 8, 16, 16)),
    "insert_layers(name)": lambda: ut.insert_layers("yolov8n.yaml", after=[4]),
    "build_model": lambda: ut.build_model("yolov5n-triplet.yaml"),
    "load_model": lambda: ut.load_model("base.pt"),
    "transfer_weights(path)": lambda: ut.transfer_weights(plain, "base.pt"),
    "compare_models": lambda: compare_models("yolov5n.yaml", "yolov5n-triplet.yaml", imgsz=64, runs=1),
    "visualize": lambda: visualize("yolov5n-triplet.yaml", image, "gates.png", imgsz=64),
    "run_study": lambda: ut.run_study(data, model="yolov5n.yaml", placements=["triplet"], seeds=2, epochs=1,
                                      imgsz=64, out="study"),
}
for name, call in calls.items():
    try:
        call()
        outcome = "works"
    except NotRegisteredError as e:
        text = str(e)
        outcome = "refused" if "ultralytics_triplet.register()" in text and "\n" not in text else repr(text)
    print("@@", name, outcome, untouched())
ut.register()
print("@@ register()", is_patched(tasks), "TripletAttention" in vars(tasks))
print("@@", type(ut.build_model("yolov5n-triplet.yaml").model[9]).__name__)
"""


def test_with_the_opt_out_no_library_call_patches_ultralytics(tmp_path):
    p = run_python(CODE, tmp_path, ULTRALYTICS_TRIPLET_DISABLE="1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == [
        "insert_layers(dict) works True",
        "TripletAttention works True",
        "insert_layers(name) refused True",
        "build_model refused True",
        "load_model refused True",
        "transfer_weights(path) refused True",
        "compare_models refused True",
        "visualize refused True",
        "run_study refused True",
        "register() True True",
        "TripletAttention",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.pt", "shapes"]  # the refused calls wrote nothing
