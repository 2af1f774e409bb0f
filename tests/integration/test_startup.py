"""The interpreter-start hook, checked in fresh interpreters as a user's processes would see it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import SITE, run_python, said

pytestmark = pytest.mark.compat


BUILD = "from ultralytics import YOLO; m = YOLO('yolov5n-triplet.yaml'); print('@@', type(m.model.model[9]).__name__)"


def test_new_process_builds_triplet_yaml_without_importing_the_package(tmp_path):
    p = run_python(BUILD, tmp_path)
    assert p.returncode == 0, p.stderr
    assert said(p)[-1] == "TripletAttention"


def test_hook_imports_nothing_heavy_at_start(tmp_path):
    code = ("import sys; print('@@', sorted(m for m in "
            "('torch', 'numpy', 'ultralytics', 'pluggy', 'importlib.metadata') "
            "if m in sys.modules), 'ultralytics_triplet._startup' in sys.modules)")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert said(p) == ["[] True"]


@pytest.mark.parametrize("first", ["model", "exporter"])
def test_the_exporter_is_patched_whichever_comes_first(first, tmp_path):
    """ultralytics imports its exporter on the first export, after the model; a program (or ultralytics' benchmark
    module) that imports the exporter first imports tasks from inside it, and the exporter is patched once a model is
    built: ``__call__`` and ``export_openvino`` wrapped, each once, and nothing said about them."""
    steps = [BUILD, "import ultralytics.engine.exporter as e"]
    code = "; ".join([*(reversed(steps) if first == "exporter" else steps),
                      "from ultralytics_triplet._compat import MARK, original",
                      "print('@@', getattr(e.Exporter.__call__, MARK, False), getattr(e.Exporter.export_openvino, MARK,"
                      " False), getattr(original(e.Exporter.export_openvino), MARK, False))"])
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert said(p) == ["TripletAttention", "True True False"]
    assert "export_openvino" not in p.stderr + p.stdout


def test_opt_out_variable_patches_nothing_until_register(tmp_path):
    code = (
        "import ultralytics.nn.tasks as t; print('@@', hasattr(t.parse_model, '_ultralytics_triplet'));"
        "import ultralytics_triplet; print('@@', hasattr(t.parse_model, '_ultralytics_triplet'));"
        "ultralytics_triplet.register(); print('@@', hasattr(t.parse_model, '_ultralytics_triplet'));" + BUILD
    )
    p = run_python(code, tmp_path, ULTRALYTICS_TRIPLET_DISABLE="1")
    assert p.returncode == 0, p.stderr
    assert said(p) == ["False", "False", "True", "TripletAttention"]


def test_plugin_imported_after_ultralytics_patches_at_once(tmp_path):
    code = (
        f"import sys; sys.path.append({str(SITE)!r});"  # -S: no start-up hook, as in a locked-down interpreter
        "from ultralytics import YOLO; YOLO('yolov5n.yaml');"  # ultralytics fully in use before the plugin
        "import ultralytics_triplet;" + BUILD
    )
    p = run_python(code, tmp_path, "-S")
    assert p.returncode == 0, p.stderr
    assert said(p)[-1] == "TripletAttention"


def test_register_patches_a_reloaded_tasks_module_again(tmp_path):
    code = ("import importlib, ultralytics.nn.tasks as t, ultralytics_triplet; importlib.reload(t);"
            "ultralytics_triplet.register(); print('@@', t.yaml_model_load('yolov5n-triplet.yaml')['scale'])")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr
    assert said(p) == ["n"]


def test_explicit_import_works_when_site_hooks_are_off(tmp_path):
    code = f"import sys; sys.path.append({str(SITE)!r}); import ultralytics_triplet;" + BUILD
    p = run_python(code, tmp_path, "-S")
    assert p.returncode == 0, p.stderr
    assert said(p)[-1] == "TripletAttention"


def _start_with_pth(tmp_path: Path, package_init: str | None) -> subprocess.CompletedProcess:
    """Start Python with only our .pth in a site dir; the package is absent or replaced by ``package_init``."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "ultralytics_triplet.pth").write_text((SITE / "ultralytics_triplet.pth").read_text())
    if package_init is not None:
        (site_dir / "ultralytics_triplet").mkdir()
        (site_dir / "ultralytics_triplet" / "__init__.py").write_text(package_init)
    code = f"import site; site.addsitedir({str(site_dir)!r}); print('alive')"
    return run_python(code, tmp_path, "-S", PYTHONPATH="")


def test_start_up_survives_a_half_uninstalled_package(tmp_path):
    p = _start_with_pth(tmp_path, None)
    assert p.returncode == 0 and p.stdout.strip() == "alive" and p.stderr == ""


def test_start_up_survives_a_package_whose_import_raises(tmp_path):
    p = _start_with_pth(tmp_path, "raise RuntimeError('broken install')")
    assert p.returncode == 0 and p.stdout.strip() == "alive"
    assert p.stderr.strip().splitlines() == [
        "WARNING ultralytics-triplet: start-up hook skipped (RuntimeError: broken install)"]


@pytest.mark.skipif("ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS" not in os.environ, reason="set by scripts/test.sh")
def test_runs_against_the_ultralytics_release_ci_asked_for(tmp_path):
    import ultralytics

    expected = os.environ["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"]
    assert ultralytics.__version__ == expected
    p = run_python("import ultralytics; print('@@', ultralytics.__version__)", tmp_path)
    assert said(p) == [expected]  # subprocesses (the yolo CLI, workers) see the same release
