"""Each seed of a study trains on its own data order, on every supported ultralytics release.

ultralytics 8.4 seeds its training loader's shuffle with the training seed; 8.3 ignores the seed there
(``_compat.shuffle_follows_seed``). Where it does, a callback on the run's own model (``on_pretrain_routine_end``,
ultralytics' public callback API) seeds the training loader's generator as 8.4 would and restarts its iterator, so
the same seed draws the same order on both releases. The processes DDP starts take no callbacks: there the order is
the same at every seed (``fixed``), which the table says.
"""

from __future__ import annotations

from typing import Any

from ultralytics.utils import RANK

from .. import _compat

__all__ = ("expected_data_order", "listed_devices", "reseed_shuffle", "seed_data_order", "shuffle_seed")


def listed_devices(device: Any) -> int:
    """How many devices ``device`` lists (``"0,1"``: 2, ``[0, 1]``: 2, ``0``: 1); 0 for none, ``cpu``, ``mps``."""
    if isinstance(device, (list, tuple)):
        return len(device)
    text = "" if device is None else str(device).strip().lower()
    if text in ("", "cpu", "mps", "cuda"):
        return 0
    ids = [d for d in text.replace("cuda:", "").split(",") if d.strip()]
    return len(ids) if ids and all(d.strip().isdigit() for d in ids) else 0


def expected_data_order(device: Any) -> str:
    """``seed`` where a run on ``device`` shuffles by its seed, ``fixed`` where it cannot (8.3 with DDP: the worker
    processes ultralytics starts take no callbacks)."""
    return "seed" if listed_devices(device) <= 1 or _compat.shuffle_follows_seed() else "fixed"


def shuffle_seed(seed: int) -> int:
    """The seed ultralytics 8.4 gives a training loader's shuffle generator in this process for training ``seed``."""
    return (_compat.SHUFFLE_SEED + RANK + int(seed)) % (1 << 64)


def reseed_shuffle(loader: Any, seed: int) -> None:
    """Make a training loader shuffle as ultralytics 8.4 shuffles for training ``seed``, from its next epoch on.

    Seeds the loader's ``generator`` (torch's ``DataLoader`` draws each epoch's permutation, and the seeds of its
    worker processes, from it) and restarts its iterator with ``InfiniteDataLoader.reset()``, which 8.3 builds when
    the loader is built, so the first epoch's order is drawn anew as well.
    """
    loader.generator.manual_seed(shuffle_seed(seed))
    loader.reset()


def seed_data_order(model: Any, applied: dict) -> None:
    """Where the release ignores the training seed, add the callback that shuffles ``model``'s training by it.

    ``applied["applied"]`` turns True once a loader was reseeded.
    """
    if _compat.shuffle_follows_seed():
        return

    def on_pretrain_routine_end(trainer) -> None:
        """Shuffle the training data by the run's seed, as ultralytics 8.4 does (the loader is built by now)."""
        loader = getattr(trainer, "train_loader", None)
        if loader is not None:
            reseed_shuffle(loader, trainer.args.seed)
            applied["applied"] = True

    model.add_callback("on_pretrain_routine_end", on_pretrain_routine_end)
