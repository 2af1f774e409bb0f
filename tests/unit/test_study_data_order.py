"""Each seed its own data order (``ultralytics_triplet.study.data_order``), on every supported ultralytics release."""

from __future__ import annotations

import pytest
import torch
from helpers import loader_order
from torch.utils.data import DataLoader

from ultralytics_triplet import _compat
from ultralytics_triplet.study.data_order import listed_devices

pytestmark = pytest.mark.compat


def test_listed_devices_counts_what_ultralytics_trains_on():
    assert [listed_devices(d) for d in (None, "", "cpu", "mps", "cuda", 0, "0", "0,1", "cuda:0,1", [0, 1])] == [
        0, 0, 0, 0, 0, 1, 1, 2, 2, 2]


def test_reseed_shuffle_orders_a_loader_by_the_seed_as_ultralytics_8_4_does():
    """In this process (no dataloader workers); the study's training test covers workers, which 8.3 starts (and
    draws an order with) as it builds the loader."""

    def reference(seed: int) -> list[int]:  # torch's own loader with the generator 8.4 seeds (RANK -1)
        generator = torch.Generator().manual_seed(_compat.SHUFFLE_SEED - 1 + seed)
        return [int(i) for b in DataLoader(list(range(32)), batch_size=4, shuffle=True, generator=generator) for i in b]

    orders = {seed: loader_order(None, reseed=seed) for seed in (0, 1)}
    assert orders[0] != orders[1] and loader_order(None, reseed=0) == orders[0]
    assert orders == {seed: reference(seed) for seed in (0, 1)}
    if _compat.shuffle_follows_seed():
        assert orders == {seed: loader_order(seed) for seed in (0, 1)}  # the release's own order
