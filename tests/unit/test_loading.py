"""Reading what a user hands over (``ultralytics_triplet.loading``): missing, empty, truncated and foreign checkpoint
files each give one clear error."""

from __future__ import annotations

import copy

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from ultralytics_triplet.loading import load_model
from ultralytics_triplet.weights import transfer_weights


@pytest.mark.newest_only
@pytest.mark.usefixtures("one_thread")  # the machine is shared
def test_transfer_rejects_missing_and_corrupt_checkpoints(tmp_path):
    """Missing, empty, truncated, non-checkpoint files: one clear line each, and the target is left untouched."""
    model = DetectionModel("yolov8n.yaml", verbose=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    good = tmp_path / "good.pt"
    torch.save({"model": copy.deepcopy(model).half()}, good)
    data = good.read_bytes()
    cases = {
        "empty.pt": b"",
        "truncated.pt": data[: len(data) // 2],
        "garbage.pt": b"this is not a checkpoint at all" * 10,
    }
    for fname, blob in cases.items():
        (tmp_path / fname).write_bytes(blob)
        with pytest.raises(ValueError, match="not a readable checkpoint") as e:
            transfer_weights(model, tmp_path / fname)
        assert "\n" not in str(e.value) and e.value.__cause__ is None and e.value.__suppress_context__
    torch.save({"optimizer": None}, tmp_path / "nomodel.pt")
    with pytest.raises(ValueError, match="no 'ema' or 'model'"):
        transfer_weights(model, tmp_path / "nomodel.pt")
    with pytest.raises(FileNotFoundError, match="not found"):
        transfer_weights(model, tmp_path / "absent.pt")
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.compat
def test_unreadable_checkpoint_is_a_value_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="bad.pt"):
        load_model(bad)
