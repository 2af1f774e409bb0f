"""What several test files share: running code as a user would (a fresh interpreter, the console scripts) and reading
what it printed, the checks of a usage error, the stock model configs with a few model helpers, and made-up rows of a
study (a plan, its records and costs, with no file behind them).

Fixtures live in conftest.py; this module holds plain functions and constants, imported as ``from helpers import``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
import ultralytics
import ultralytics.nn.tasks as tasks
import yaml
from torch import nn
from ultralytics.nn.tasks import DetectionModel, guess_model_scale, yaml_model_load

from ultralytics_triplet import get_plugin_manager, hookimpl, insert_layers
from ultralytics_triplet._compat import OTHER_MODEL_CLASSES

IMGSZ = 64  # tiny images keep every end-to-end test within seconds on 2 CPU cores
BASE_IMGSZ = 64  # the trained base (conftest.trained_base): its images, and its models' predictions
SITE = Path(sysconfig.get_paths()["purelib"])  # where the wheel put the package and its start-up files

needs_safe_load = pytest.mark.skipif(not hasattr(tasks, "_SafeLoad"), reason="restricted loading arrived in 8.4")


# ---------------------------------------------------------------------------------------------- processes and the CLI


def clean_env(**extra: str) -> dict[str, str]:
    """Return os.environ without our opt-outs and PYTHONPATH to this checkout, plus ``extra``.

    Everything else is inherited, the throw-away ``YOLO_CONFIG_DIR`` that conftest.py sets included.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ULTRALYTICS_TRIPLET", "ULTRALYTICS_SAFE_LOAD"))}
    env.update(extra)
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run(cmd: list[str], cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with a clean environment; output captured as text."""
    return subprocess.run(cmd, cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=timeout)


def run_python(code: str, cwd: Path, *args: str, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (the same one running the tests) and return the finished process."""
    return run([sys.executable, *args, "-c", code], cwd, timeout=timeout, **env)


INTERRUPT_HOOK = Path(__file__).parent / "interrupt"  # its sitecustomize.py raises the interrupt in the child


def interrupt_at(point: str, n: int = 1) -> dict[str, str]:
    """Environment for a child process that meets a Ctrl-C the ``n``-th time it reaches ``point``, without waiting
    on any clock: ``checkpoint`` (right after ``last.pt`` is saved), ``results-row`` (between an epoch's row in
    ``results.csv`` and its ``last.pt``), ``training-step``, ``validation`` or ``export`` (see
    ``tests/interrupt/sitecustomize.py``). Pass it to :func:`run` as keywords."""
    path = os.pathsep.join(p for p in (str(INTERRUPT_HOOK), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "ULTRALYTICS_TRIPLET_TEST_INTERRUPT": f"{point}@{n}"}


def said(p: subprocess.CompletedProcess) -> list[str]:
    """The lines a subprocess printed with ``print("@@", ...)``: its answers, apart from ultralytics' own logging."""
    return [line[3:] for line in p.stdout.splitlines() if line.startswith("@@ ")]


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


def cli() -> list[str]:
    """The installed console script; ``python -m ultralytics_triplet.cli`` where it is not installed yet."""
    if (Path(sys.executable).parent / "ultralytics-triplet").exists():
        return [script("ultralytics-triplet")]
    return [sys.executable, "-m", "ultralytics_triplet.cli"]


def assert_usage_error(code: int, err: str, *words: str) -> None:
    """Exit status 2 and exactly one ``ultralytics-triplet...: error: ...`` line containing ``words``, no traceback."""
    assert code == 2
    lines = [line for line in err.splitlines() if re.match(r"ultralytics-triplet( \w+)?: error: ", line)]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


# ------------------------------------------------------------------------------------------ stock configs and models

CFG_DIR = Path(ultralytics.__file__).parent / "cfg" / "models"  # the model configs of the ultralytics under test
ALL_STOCK = sorted(p.name for p in CFG_DIR.rglob("*.yaml"))
STOCK = [n for n in ALL_STOCK if not any(s in n for s in OTHER_MODEL_CLASSES)]  # YOLO models, with placements
OTHER = [n for n in ALL_STOCK if n not in STOCK]  # other model classes (RT-DETR, YOLO-World, ...)


def at_scale_n(stock: str) -> str:
    """The name a user writes for ``stock`` at scale n: 'yolov8-p2.yaml' -> 'yolov8n-p2.yaml'; per-scale files as is."""
    d = yaml.safe_load(next(CFG_DIR.rglob(stock)).read_text())
    if "n" in (d.get("scales") or {}) and not guess_model_scale(stock):
        return re.sub(r"(\d+)", r"\1n", stock, count=1)
    return stock


def variant(stock: str, placement: str) -> str:
    """'yolov8-p2.yaml', '-neck' -> 'yolov8n-p2-triplet-neck.yaml'."""
    return at_scale_n(stock).replace(".yaml", f"-triplet{placement}.yaml")


def flat(out) -> list[torch.Tensor]:
    """All tensors in a (nested) model output, in order (a dict's in the order of its sorted keys)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in flat(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for x in out for t in flat(x)]
    return []


def run_model(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Eval-mode forward, flattened."""
    with torch.no_grad():
        return flat(model.eval()(x))


def trained_like(cfg: str | dict = "yolov5n.yaml", nc: int = 3, seed: int = 0) -> DetectionModel:
    """A model whose every tensor (BN statistics included) differs from any initialisation, with class names."""
    torch.manual_seed(seed)
    model = DetectionModel(copy.deepcopy(cfg) if isinstance(cfg, dict) else yaml_model_load(cfg), nc=nc,
                           verbose=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.05)
    model.names = {i: f"class{i}" for i in range(nc)}
    return model.eval()


def dense_cfg() -> dict:
    """yolov5n with TripletAttention after every C3 (backbone and neck): 8 inserted rows."""
    d = yaml_model_load("yolov5n.yaml")
    return insert_layers(d, after=[i for i, r in enumerate(d["backbone"] + d["head"]) if r[2] == "C3"])


def pair(no_spatial: bool = False, k: int = 7, seed: int = 0):
    """The official formulation (``ultralytics_triplet.reference``) and our module, holding the same random weights.

    BN affine parameters and running statistics included, so the two compute the same function in train and eval mode.
    """
    import torch

    from ultralytics_triplet import TripletAttention
    from ultralytics_triplet.reference import ReferenceTriplet

    torch.manual_seed(seed)
    ref = ReferenceTriplet(no_spatial=no_spatial, kernel_size=k)
    with torch.no_grad():
        for name, t in ref.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t))
    ours = TripletAttention(no_spatial=no_spatial, kernel_size=k)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def close_at_scale(actual: torch.Tensor, expected: torch.Tensor, rtol: float, msg: str) -> None:
    """Each entry within ``rtol`` of itself or ``rtol / 10`` of the tensor's largest entry.

    Gradients and BatchNorm statistics are sums over many positions, computed in another order by each formulation:
    their rounding is relative to the size of the terms, of the order of the tensor's largest entry, not to each entry
    (a small entry can be the sum of large terms).
    """
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol / 10 * float(expected.abs().max()), msg=msg)


def loader_order(seed: int | None, reseed: int | None = None) -> list[int]:
    """The first epoch's order of a training loader ultralytics builds once its trainer seeded torch for training
    ``seed`` (``None``: as it stands), reseeded by the study's ``reseed_shuffle`` for ``reseed`` when given."""
    import warnings

    from ultralytics.data.build import build_dataloader

    from ultralytics_triplet.study.data_order import reseed_shuffle

    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)  # BaseTrainer: init_seeds(seed + 1 + RANK), and RANK is -1 outside DDP
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pin_memory without an accelerator
            loader = build_dataloader(list(range(32)), batch=4, workers=0, shuffle=True)
            if reseed is not None:
                reseed_shuffle(loader, reseed)
            return [int(i) for batch in loader for i in batch]


# ---------------------------------------------------------------------------------------------------- plugins


@contextlib.contextmanager
def registered(obj, name: str):
    """Register a plugin object for the duration of a with-block (and take its names away from ultralytics after)."""
    from ultralytics_triplet.integration import sync

    pm = get_plugin_manager()
    pm.register(obj, name=name)
    try:
        yield
    finally:
        pm.unregister(name=name)
        sync()


class ChannelGate(nn.Module):
    """A third-party module that needs its input channel count: one learned scale per channel."""

    def __init__(self, c1, init=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, c1, 1, 1), float(init)))

    def forward(self, x):
        return x * self.scale


class ChannelPlugin:
    """A third-party plugin that registers :class:`ChannelGate` as a channel module."""

    @hookimpl
    def register_channel_modules(self):
        return [ChannelGate]


# ------------------------------------------------------------------------------------------------------ study rows


def fake_plan(variants=None, seeds: int = 2):
    """A study's plan over ``variants`` (default :func:`fake_variants`) without any file behind it: 1 epoch at 64 px."""
    from ultralytics_triplet.study.options import StudyOptions
    from ultralytics_triplet.study.plan import Plan, Settings

    settings = Settings(format=1, model="yolov5n.yaml", model_sha256="m", task="detect", data="/d/data.yaml",
                        data_sha256="d", data_files=24, nc=3, epochs=1, imgsz=64, batch=8, pretrained=None,
                        pretrained_sha256=None, train_args={})
    options = StudyOptions(data="/d/data.yaml", model="yolov5n.yaml", seeds=seeds, epochs=1, imgsz=64, batch=8)
    return Plan(options=options, settings=settings, fingerprint="f", variants=variants or fake_variants())


def fake_variants(*more):
    """The plain yolov5n, and TripletAttention after layer 4 (plus ``more`` rows: (name, role, module))."""
    from ultralytics_triplet.study.variants import Role, Variant

    rows = [Variant("yolov5n.yaml", Role.PLAIN, "a"),
            Variant("/s/models/yolov5n+TA@4.yaml", Role.VARIANT, "b", "after:4", "TripletAttention")]
    rows += [Variant(name, role, name, None if role is Role.REFERENCE else "after:4", module)
             for name, role, module in more]
    return tuple(rows)


def fake_records(values: dict[str, list[float]], order: str = "seed"):
    """Records of every row's runs, seed by seed: mAP50-95 as given, mAP50 twice that."""
    from ultralytics_triplet.study.run import RunRecord

    return [RunRecord(config=config, seed=seed, run=f"{Path(config).stem}-seed{seed}", status="trained",
                      metrics={"metrics/mAP50-95(B)": v, "metrics/mAP50(B)": 2 * v}, epochs_done=1, train_time_s=1.0,
                      wall_s=2.0, run_dir="runs/r", weights="w.pt", ultralytics="8.3.0", data_order=order)
            for config, vs in values.items() for seed, v in enumerate(vs)]


def costed(rows, latencies: list[float], rounds: dict[int, list[float]] | None = None,
           gflops: list[float] | None = None):
    """The rows with made-up costs, as the study makes them from its rounds (``Cost.timed``): row k timed
    ``latencies[k]`` ms in each of 5 rounds, or ``rounds[k]`` ms round by round; 0.5 GFLOPs (or ``gflops[k]``) and
    1000 + k parameters, so that the plain model is the cheapest where GFLOPs are equal."""
    import dataclasses

    from ultralytics_triplet.study.report import Cost

    times = [list((rounds or {}).get(k, [ms] * 5)) for k, ms in enumerate(latencies)]
    return [dataclasses.replace(r, cost=Cost.timed({"parameters": 1000 + k, "gflops": gflops[k] if gflops else 0.5},
                                                   t, times[0], "onnx"))
            for k, (r, t) in enumerate(zip(rows, times))]
