"""Sharing a trained model with someone who has ultralytics but not this package (docs/sharing.md).

The guarantees checked: a triplet checkpoint pickles this package's classes, so where the package is missing it does
not open (ultralytics names the missing module and, offline or with auto-install off, stops with
``ModuleNotFoundError``); an exported ONNX or TorchScript file holds no Python class of this package and predicts with
plain ultralytics, computing what the triplet model computes (within the export parity the export tests use).

"Where the package is missing" is a real absence, not a mock: the child interpreter starts with ``-S`` (no ``.pth``
file runs, so neither does this package's start-up hook) and sees the test environment's site-packages through a
folder of links that leaves out ``ultralytics_triplet`` and its distribution metadata.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import IMGSZ, clean_env, said

pytestmark = [pytest.mark.slow, pytest.mark.newest_only]  # exports; the sharing rules are the newest release's


def site_without_this_package(root: Path) -> Path:
    """A folder that links every entry of the environment's site-packages except this package and its metadata."""
    view = root / "site-packages-without-ultralytics-triplet"
    view.mkdir()
    sources = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for source in sources:
        for entry in source.iterdir():
            hidden = entry.name.lower().startswith(("ultralytics_triplet", "_editable_impl_ultralytics_triplet"))
            if not hidden and entry.suffix != ".pth" and not (view / entry.name).exists():
                (view / entry.name).symlink_to(entry)
    return view


@pytest.fixture(scope="module")
def without_package(tmp_path_factory):
    """Run code in an interpreter where ``ultralytics_triplet`` cannot be imported; returns the finished process."""
    view = site_without_this_package(tmp_path_factory.mktemp("site"))

    def run(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
        # Other PYTHONPATH entries stay (an older ultralytics may be there), but none that holds the package.
        paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if p and not (Path(p) / "ultralytics_triplet").exists()]
        probe = "import importlib.util as u; assert u.find_spec('ultralytics_triplet') is None, 'package visible'\n"
        return subprocess.run([sys.executable, "-S", "-c", probe + code], cwd=cwd, capture_output=True, text=True,
                              timeout=600, env=clean_env(PYTHONPATH=os.pathsep.join([*paths, str(view)]), **env))

    return run


@pytest.fixture(scope="module")
def triplet_checkpoint(tmp_path_factory) -> Path:
    """A yolov5n-triplet checkpoint in ultralytics' format (``Model.save``): what a finished run's best.pt holds."""
    from ultralytics import YOLO

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    YOLO("yolov5n-triplet.yaml").save(path)
    return path


def test_a_triplet_checkpoint_does_not_open_where_the_package_is_missing(without_package, triplet_checkpoint,
                                                                         tmp_path):
    """ultralytics names the module, tries its auto-install (off here, as offline), then raises ModuleNotFoundError."""
    p = without_package(f"from ultralytics import YOLO; YOLO({str(triplet_checkpoint)!r})", tmp_path,
                        YOLO_AUTOINSTALL="False")
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "appears to require 'ultralytics_triplet'" in out, out[-3000:]
    assert "ModuleNotFoundError: No module named 'ultralytics_triplet'" in out, out[-3000:]


def test_the_same_checkpoint_opens_where_the_package_is_installed(triplet_checkpoint, tmp_path):
    """The control for the test above: only the package's absence makes the difference."""
    code = f"from ultralytics import YOLO; m = YOLO({str(triplet_checkpoint)!r}); print('@@', type(m.model.model[9]))"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=clean_env())
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == ["<class 'ultralytics_triplet.nn.TripletAttention'>"]


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_an_exported_triplet_model_predicts_where_the_package_is_missing(fmt, without_package, triplet_checkpoint,
                                                                        tmp_path):
    """``YOLO(exported file)`` predicts with plain ultralytics, and its raw output is the triplet model's."""
    from ultralytics import YOLO

    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    model = YOLO(triplet_checkpoint)
    exported = Path(model.export(format=fmt, imgsz=IMGSZ, device="cpu"))
    x = torch.rand(1, 3, IMGSZ, IMGSZ, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.model.float().eval()(x)[0].numpy()
    np.save(tmp_path / "x.npy", x.numpy())
    image = Path(__import__("ultralytics").__file__).parent / "assets" / "bus.jpg"
    code = (
        "import numpy as np, torch\n"
        "from ultralytics import YOLO\n"
        "from ultralytics.nn.autobackend import AutoBackend\n"
        f"results = YOLO({str(exported)!r}, task='detect').predict({str(image)!r}, imgsz={IMGSZ}, verbose=False)\n"
        f"y = AutoBackend({str(exported)!r}, device=torch.device('cpu'))(torch.from_numpy(np.load('x.npy')))\n"
        "y = y[0] if isinstance(y, (list, tuple)) else y\n"
        "np.save('y.npy', y.numpy() if torch.is_tensor(y) else np.asarray(y))\n"
        "import sys; print('@@', len(results), results[0].boxes is not None, 'ultralytics_triplet' in sys.modules)"
    )
    p = without_package(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert said(p) == ["1 True False"]
    got = np.load(tmp_path / "y.npy")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
