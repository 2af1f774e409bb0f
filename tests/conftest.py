"""Shared fixtures: a tiny synthetic dataset, and a way to run code in a fresh interpreter as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ultralytics_triplet.data import make_shapes_dataset

IMGSZ = 64  # tiny images keep every end-to-end test within seconds on 2 CPU cores


def pytest_configure(config):
    """The suite tests the installed package (its .pth hook, entry points and bundled files), not a bare checkout."""
    import importlib.metadata

    try:
        importlib.metadata.distribution("ultralytics-triplet")
    except importlib.metadata.PackageNotFoundError:
        pytest.exit("ultralytics-triplet is not installed: run the README's test command (scripts/test.sh)", 2)


@pytest.fixture
def one_thread():
    """Keep torch on one thread for a test: the machine is shared and the models are tiny."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """A 16+8 image shapes dataset at 64 px; returns its data.yaml."""
    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "data", n_train=16, n_val=8, imgsz=IMGSZ)


def clean_env(**extra: str) -> dict[str, str]:
    """Return os.environ without our opt-outs and PYTHONPATH to this checkout, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ULTRALYTICS_TRIPLET", "ULTRALYTICS_SAFE_LOAD"))}
    env.update(extra)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_python(code: str, cwd: Path, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (the same one running the tests) and return the finished process."""
    return run([sys.executable, *args, "-c", code], cwd, timeout=timeout, **env)


def said(p: subprocess.CompletedProcess) -> list[str]:
    """The lines a subprocess printed with ``print("@@", ...)``: its answers, apart from ultralytics' own logging."""
    return [line[3:] for line in p.stdout.splitlines() if line.startswith("@@ ")]


def run(cmd: list[str], cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with a clean environment; output captured as text."""
    return subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)


def run_ddp_worker(trainer, cwd: Path) -> subprocess.CompletedProcess:
    """Write the script ultralytics starts in every DDP process for ``trainer`` and run it in a fresh interpreter.

    The script must not import this package (a worker has only ultralytics and the installed start-up hook); it and
    the trainer file it loads are removed afterwards.
    """
    from ultralytics.utils.dist import generate_ddp_file

    worker = Path(generate_ddp_file(trainer))
    try:
        assert "ultralytics_triplet" not in worker.read_text()
        return run([sys.executable, str(worker)], cwd)
    finally:
        for leftover in (worker, worker.with_suffix(".pt")):
            leftover.unlink(missing_ok=True)


def script(name: str) -> str:
    """Return the path of a console script installed beside the running interpreter (e.g. ``yolo``)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{name} is not installed beside {sys.executable}")
    return str(path)
