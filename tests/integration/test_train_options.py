"""ultralytics' training options on a triplet model: ``compile=True``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers import IMGSZ

pytestmark = pytest.mark.newest_only


# Inductor compiles C++ for every kernel: 812 s for this test on the project's loaded 2-core machine. By default the
# test swaps in the aot_eager backend (dynamo + AOT autograd, the parts that trace this package's Python); set this to
# run the inductor backend exactly as ultralytics asks for it.
INDUCTOR = os.environ.get("ULTRALYTICS_TRIPLET_TEST_INDUCTOR") == "1"


def _has_compile_arg() -> bool:
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return "compile" in DEFAULT_CFG_DICT


@pytest.mark.slow
@pytest.mark.skipif(not _has_compile_arg(), reason="this ultralytics release has no 'compile' train argument")
def test_compile_true_trains_a_triplet_model(shapes_data, tmp_path, monkeypatch):
    from ultralytics import YOLO

    from ultralytics_triplet.nn import TripletAttention

    # Record, for each call, whether dynamo was tracing it and which formulation it chose: the compiled training steps
    # must trace the plain formulation only (the final validation runs uncompiled, where the fast ones are right).
    compiling = torch.compiler.is_compiling
    calls, choose = [], TripletAttention.formulation
    monkeypatch.setattr(TripletAttention, "formulation",
                        lambda self, x: calls.append((compiling(), choose(self, x))) or calls[-1][1])
    if not INDUCTOR:
        compile_ = torch.compile
        monkeypatch.setattr(torch, "compile", lambda model, mode=None, backend=None, **kw: compile_(
            model, backend="aot_eager", **kw))
    model = YOLO("yolov5n-triplet.yaml")
    model.train(data=str(shapes_data), epochs=1, imgsz=IMGSZ, batch=8, workers=0, device="cpu", plots=False,
                val=False, compile=True, project=str(tmp_path), name="c", seed=0)
    trainer = model.trainer
    assert hasattr(trainer.model, "_orig_mod"), "ultralytics did not compile the model (see its 'compile:' log)"
    compiled = {name for traced, name in calls if traced}
    assert compiled and compiled <= {"plain", "autocast"}, calls  # module-calling formulations only
    losses = trainer.tloss.values() if isinstance(trainer.tloss, dict) else [trainer.tloss]
    assert losses and all(torch.isfinite(torch.as_tensor(v)).all() for v in losses)
    assert (Path(trainer.save_dir) / "weights" / "last.pt").is_file()
