"""Named placements across processes: the generated file is reused while up to date, and checkpoints of each
placement reload in a new process."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from helpers import STOCK, flat, run_python, said, variant

from ultralytics_triplet.placements import PLACEMENTS

# one thread: tiny inputs gain nothing from threads, and on a busy machine OpenMP's waiting makes each conv 10x slower
pytestmark = [pytest.mark.compat, pytest.mark.usefixtures("one_thread")]


def test_an_unchanged_file_is_not_rewritten_and_a_stale_one_is(tmp_path):
    code = ("from ultralytics.nn.tasks import check_yaml; import os; p = check_yaml('yolov8-pose-triplet-dense.yaml');"
            "print('@@', p, os.stat(p).st_mtime_ns)")
    first = said(run_python(code, tmp_path))[-1].split()
    second = said(run_python(code, tmp_path))[-1].split()
    assert first == second  # same file, same mtime: a second process found it up to date
    Path(first[0]).write_text(Path(first[0]).read_text().replace("TripletAttention", "Identity"))
    third = said(run_python(code, tmp_path))[-1].split()
    assert third[0] == first[0] and "TripletAttention" in Path(first[0]).read_text()
    assert not [p for p in Path(first[0]).parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def state_digest(model) -> str:
    """One digest of every tensor of ``model``'s state dict with its name, dtype and shape: equal digests, equal
    weights. The subprocess below runs this very function, from its source."""
    import hashlib

    h = hashlib.sha256()
    for k, t in model.state_dict().items():
        h.update(f"{k} {t.dtype} {tuple(t.shape)}".encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.slow
def test_checkpoints_of_each_placement_reload_in_a_new_process(tmp_path):
    """A checkpoint reloads, in a process that never imports this package, as the model that was saved: every tensor
    bit for bit, the same TripletAttention class, and its outputs to float32 rounding (a fresh model's outputs are
    mostly the head's biases, so the weights' digest is what shows every layer came back)."""
    from ultralytics import YOLO

    # Every placement of one family, then one placement of each other head and naming scheme (the pickled classes
    # are the same for all: this covers each kind of head and row layout the loader meets).
    cases = [("yolov5.yaml", p) for p in PLACEMENTS] + [
        ("yolo11-seg.yaml", "-dense"), ("yolov8-pose.yaml", "-neck"), ("yolo11-obb.yaml", ""),
        ("yolo11-cls.yaml", "-dense"), ("yolov10n.yaml", "-neck"), ("yolov9t.yaml", ""), ("yolov8-p2.yaml", "-dense"),
    ]
    names = [variant(s, p) for s, p in cases if s in STOCK]
    x = torch.rand(1, 3, 64, 64)
    expected = {}
    for name in names:
        model = YOLO(name)
        path = tmp_path / name.replace(".yaml", ".pt")
        torch.save({"model": model.model, "train_args": {}}, path)  # the entry ultralytics' loader reads
        with torch.no_grad():
            expected[name] = (sum(float(t.double().sum()) for t in flat(model.model.eval()(x))),
                              state_digest(model.model))
    torch.save(x, tmp_path / "x.pt")
    code = ("import torch; from ultralytics import YOLO; x = torch.load('x.pt')\n" + inspect.getsource(state_digest) +
            f"names = {names!r}\n"
            "for n in names:\n"
            "    m = YOLO(n.replace('.yaml', '.pt')).model.eval()\n"
            "    with torch.no_grad(): out = m(x)\n"
            "    flat = lambda o: [o] if torch.is_tensor(o) else "
            "[t for e in (o.values() if isinstance(o, dict) else o) for t in flat(e)]\n"
            "    kinds = {f'{type(l).__module__}.{type(l).__name__}' for l in m.modules()"
            " if type(l).__name__ == 'TripletAttention'}\n"
            "    print('@@', n, sum(float(t.double().sum()) for t in flat(out)), state_digest(m),"
            " sum(type(l).__name__ == 'TripletAttention' for l in m.modules()), *sorted(kinds))\n")
    p = run_python(code, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    got = {line.split()[0]: line.split()[1:] for line in said(p)}
    assert set(got) == set(names)
    for name in names:
        total, digest, count, *kinds = got[name]
        assert int(count) >= 1 and kinds == ["ultralytics_triplet.nn.TripletAttention"], got[name]
        assert digest == expected[name][1], name  # the saved weights, exactly
        # the same weights on the same machine: equal to float32 rounding (the two processes may use other threads)
        assert float(total) == pytest.approx(expected[name][0], rel=1e-5, abs=1e-4)
