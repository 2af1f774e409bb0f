"""Where a study's runs train: one after another in this process (``local``), or as Ray tasks (``ray``).

Both call ``on_done(spec, record)`` as each run finishes, in the calling process, which records it. Locally the
console's progress bar follows every epoch; on Ray it moves as runs finish, and each worker writes its run's log to
the run folder, passing warnings and errors on to Ray's log, which Ray shows on the driver.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

from .. import _env
from .._checks import Remedy, fail
from .._text import one_line
from .console import Console
from .data_order import listed_devices
from .run import RunRecord, RunSpec, run_training

__all__ = ("RAY_HINT", "RETRY", "import_ray", "run_local", "run_ray")

RAY_HINT = "'ray' needs Ray, an optional extra: pip install 'ultralytics-triplet[ray]'"
RETRY = Remedy("the same call again retries the missing runs", "the same command again retries the missing runs")
OnDone = Callable[[RunSpec, RunRecord], None]


def import_ray():
    """Import Ray, or raise the one-line install hint."""
    try:
        import ray  # an optional dependency: the ray extra
    except ImportError:
        raise fail(ImportError, "backend", RAY_HINT) from None
    return ray


def run_local(specs: Sequence[RunSpec], on_done: OnDone, console: Console) -> None:
    """Train the runs one after the other in this process, showing each one's epochs on ``console``."""
    for spec in specs:
        console.start(spec.name)
        on_done(spec, run_training(spec, on_epoch=console.epoch, write=console.write))


def _ray_gpus(ray, device: Any) -> int:
    """GPUs per Ray task: as many as ``device`` lists, none for ``cpu``, else one where the cluster has GPUs."""
    if str(device).strip().lower() in ("cpu", "mps"):
        return 0
    return listed_devices(device) or (1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0)


def run_ray(specs: Sequence[RunSpec], on_done: OnDone, address: str | None, device: Any) -> None:
    """Run every training as a Ray task (on the cluster at ``address``, or a local instance); record as they end.

    Raises:
        RuntimeError: If a run failed (its task raised or its worker died); the runs that finished are recorded.
    """
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        forward = {k: v for k, v in os.environ.items() if k.startswith(_env.PREFIX)}
        if not address:  # a local instance: its workers run this machine's Python, so give them this environment
            forward.update({k: os.environ[k] for k in ("PYTHONPATH", "OMP_NUM_THREADS", "YOLO_CONFIG_DIR")
                            if k in os.environ})
        ray.init(address=address or None, runtime_env={"env_vars": forward} if forward else None,
                 log_to_driver=True)
        started = True
    try:
        gpus = _ray_gpus(ray, device)
        remote = ray.remote(num_gpus=gpus, num_cpus=1, max_retries=0)(run_training)
        pending = {remote.remote(dataclasses.replace(spec, ray_gpus=gpus)): spec for spec in specs}
        failures = []
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        on_done(spec, ray.get(ref))
                    except ray.exceptions.RayError as e:  # the task raised, or its worker died
                        cause = getattr(e, "cause", None)
                        failures.append(f"{spec.name}: {one_line(cause if cause is not None else e)}")
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)  # a KeyboardInterrupt in the task: ultralytics leaves last.pt resumable
            raise
        if failures:
            raise fail(RuntimeError, None, f"{len(failures)} run{'s' * (len(failures) > 1)} failed on Ray: "
                       f"{failures[0]}", RETRY)
    finally:
        if started:
            ray.shutdown()
