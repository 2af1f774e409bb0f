"""The suite's configuration and the fixtures several test files share (plain helpers live in helpers.py).

- Every ultralytics process the tests start gets a throw-away settings folder (``YOLO_CONFIG_DIR``), so running the
  tests leaves the user's ``~/.config/Ultralytics`` (settings and generated configs) as it was.
- The suite tests the installed package, not a bare checkout.
- Every test says whether it also runs against the oldest supported ultralytics (marker ``compat``) or only against
  the newest (``newest_only``, which wins over a file's ``compat``); a test with neither fails collection.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# ultralytics reads YOLO_CONFIG_DIR once, when it is first imported; the subprocesses inherit it (helpers.clean_env).
assert "ultralytics" not in sys.modules, (
    "ultralytics was imported before tests/conftest.py could point YOLO_CONFIG_DIR at a throw-away folder, so the "
    "tests would use and rewrite the user's ultralytics settings; import ultralytics in test files only"
)
if "YOLO_CONFIG_DIR" not in os.environ:
    os.environ["YOLO_CONFIG_DIR"] = _CONFIG_DIR = tempfile.mkdtemp(prefix="ultralytics-triplet-tests-")
    atexit.register(shutil.rmtree, _CONFIG_DIR, ignore_errors=True)

RUNS = ("compat", "newest_only")  # the markers that say which ultralytics runs a test


def pytest_configure(config):
    """The suite tests the installed package (its .pth hook, entry points and bundled files), not a bare checkout."""
    import importlib.metadata

    try:
        importlib.metadata.distribution("ultralytics-triplet")
    except importlib.metadata.PackageNotFoundError:
        pytest.exit("ultralytics-triplet is not installed: run the README's test command (scripts/test.sh)", 2)


@pytest.hookimpl(tryfirst=True)  # before -m and -k deselect anything: an unmarked test fails every run
def pytest_collection_modifyitems(config, items):
    """Refuse a test that carries neither ``compat`` nor ``newest_only``: it would silently miss the compat run."""
    unmarked = [item.nodeid for item in items if not any(item.get_closest_marker(name) for name in RUNS)]
    if unmarked:
        shown = "\n  ".join(unmarked[:20]) + (f"\n  ... and {len(unmarked) - 20} more" if len(unmarked) > 20 else "")
        raise pytest.UsageError(
            f"{len(unmarked)} test(s) carry neither marker 'compat' (also run against the oldest supported "
            "ultralytics) nor 'newest_only' (skipped there); give the file `pytestmark = pytest.mark.compat` "
            f"(or newest_only), or mark each test:\n  {shown}"
        )


@pytest.fixture
def one_thread():
    """Keep torch on one thread for a test: the machine is shared and the models are tiny (tiny inputs gain nothing
    from threads, and on a busy machine OpenMP's waiting makes each conv 10x slower)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """A 16+8 image shapes dataset at 64 px; returns its data.yaml."""
    from helpers import IMGSZ

    from ultralytics_triplet.data import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "data", n_train=16, n_val=8, imgsz=IMGSZ)


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory) -> Path:
    """A 3-class yolov5n checkpoint shaped like a finished ultralytics run (float16 model, train_args)."""
    import torch
    from helpers import IMGSZ
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    torch.manual_seed(0)
    model = DetectionModel(yaml_model_load("yolov5n.yaml"), nc=3, verbose=False)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t))  # distinct from any initialization, so a copy is recognizable
    model.names = {0: "rectangle", 1: "ellipse", 2: "triangle"}
    model.args = {"task": "detect", "imgsz": IMGSZ, "data": "shapes.yaml"}
    path = tmp_path_factory.mktemp("base") / "base.pt"
    torch.save({"epoch": -1, "model": model.half(), "ema": None, "train_args": dict(model.args)}, path)
    return path


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory) -> tuple[Path, Path, float]:
    """A plain yolov5n trained from scratch until it detects shapes: (best.pt, data.yaml, its val mAP50-95).

    Trained once per test run (about two minutes on 2 cores) for the tests that need a model that really detects.
    """
    import inspect

    import numpy as np
    import ultralytics.utils.metrics as metrics
    from helpers import BASE_IMGSZ
    from ultralytics import YOLO

    if not hasattr(np, "trapz") and "np.trapz(" in inspect.getsource(metrics):
        pytest.skip(f"this ultralytics computes mAP with numpy.trapz, which numpy {np.__version__} no longer has")

    from ultralytics_triplet.data import make_shapes_dataset

    root = tmp_path_factory.mktemp("base")
    data = make_shapes_dataset(root / "shapes", n_train=256, n_val=16, imgsz=BASE_IMGSZ, seed=0)
    model = YOLO("yolov5n.yaml")
    model.train(data=str(data), epochs=60, imgsz=BASE_IMGSZ, batch=16, workers=0, device="cpu", seed=0,
                deterministic=True, plots=False, project=str(root), name="base", warmup_epochs=0, mosaic=0.0,
                verbose=False)
    best = Path(model.trainer.best)
    score = YOLO(best).val(data=str(data), imgsz=BASE_IMGSZ, batch=16, device="cpu", plots=False,
                           project=str(root), name="val").box.map
    assert score > 0.02, f"the base learned too little ({score:.3f}) to compare mAP against"
    return best, data, float(score)


@pytest.fixture
def warnings_logged():
    """Collect what ultralytics' LOGGER prints at WARNING level during the test."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
