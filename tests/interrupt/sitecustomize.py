"""A Ctrl-C at a named point of a test's child process: the KeyboardInterrupt a press landing there would raise.

Tests put this folder first on a child's ``PYTHONPATH`` and set ``ULTRALYTICS_TRIPLET_TEST_INTERRUPT=POINT@N``
(``helpers.interrupt_at``): the N-th time the process reaches POINT, counted from its start, it raises
KeyboardInterrupt there. Without the variable this file does nothing. The points wrap ultralytics' own methods, each
as its module is first imported (so the program imports ultralytics in its own order, as without this file):

=============== ======================================================================================================
training-step   before an optimizer step (``BaseTrainer.optimizer_step``): before the epoch's row and checkpoint
results-row     right after an epoch's row is appended to ``results.csv``, before ``last.pt`` is saved
                (``BaseTrainer.save_metrics``; the trainer saves ``last.pt`` next)
checkpoint      right after ``last.pt`` and ``best.pt`` are saved (``BaseTrainer.save_model``)
validation      during a validation, after its first batch (``on_val_batch_end`` of the N-th
                ``BaseValidator.__call__``: each epoch's, then the final one of ``best.pt``)
export          as an export starts (``Exporter.__call__``)
=============== ======================================================================================================

A point the process never reaches N times leaves it alone, so it exits as it would have: a test sees that.
"""

from __future__ import annotations

import functools
import os

VARIABLE = "ULTRALYTICS_TRIPLET_TEST_INTERRUPT"


def _interrupt(point: str, n: int) -> None:
    raise KeyboardInterrupt(f"test interrupt: {point}@{n}")


def _counted(method, point: str, n: int, after: bool):
    """``method``, raising KeyboardInterrupt before (or right after) its N-th call."""
    calls = 0

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == n and not after:
            _interrupt(point, n)
        result = method(*args, **kwargs)
        if calls == n and after:
            _interrupt(point, n)
        return result

    return wrapper


def _arm_trainer(module, point: str, n: int) -> None:
    name, after = {"training-step": ("optimizer_step", False), "results-row": ("save_metrics", True),
                   "checkpoint": ("save_model", True)}[point]
    setattr(module.BaseTrainer, name, _counted(getattr(module.BaseTrainer, name), point, n, after))


def _arm_validator(module, point: str, n: int) -> None:
    cls = module.BaseValidator
    call, run_callbacks = cls.__call__, cls.run_callbacks
    state = {"calls": 0, "armed": False}

    @functools.wraps(call)
    def __call__(self, *args, **kwargs):
        state["calls"] += 1
        state["armed"] = state["calls"] == n
        return call(self, *args, **kwargs)

    @functools.wraps(run_callbacks)
    def callbacks(self, event):
        run_callbacks(self, event)
        if event == "on_val_batch_end" and state["armed"]:
            state["armed"] = False
            _interrupt(point, n)

    cls.__call__, cls.run_callbacks = __call__, callbacks


def _arm_exporter(module, point: str, n: int) -> None:
    module.Exporter.__call__ = _counted(module.Exporter.__call__, point, n, after=False)


POINTS = {
    "training-step": ("ultralytics.engine.trainer", _arm_trainer),
    "results-row": ("ultralytics.engine.trainer", _arm_trainer),
    "checkpoint": ("ultralytics.engine.trainer", _arm_trainer),
    "validation": ("ultralytics.engine.validator", _arm_validator),
    "export": ("ultralytics.engine.exporter", _arm_exporter),
}


def _install() -> None:
    setting = os.environ.get(VARIABLE)
    if not setting:
        return
    point, _, count = setting.partition("@")
    if point not in POINTS or not count.isdigit() or int(count) < 1:
        raise SystemExit(f"{VARIABLE}={setting!r}: expected POINT@N, N >= 1, POINT one of {', '.join(POINTS)}")
    name, arm = POINTS[point]
    from ultralytics_triplet._import_hook import after_import  # the package's own one-shot finder (imports sys)

    after_import(name, functools.partial(arm, point=point, n=int(count)))


_install()
