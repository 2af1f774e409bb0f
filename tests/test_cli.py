"""The ``ultralytics-triplet`` command: every subcommand as a user runs it, and bad input (exit 2, nothing written).

Successful runs go through the installed console script in a fresh process; argument validation is checked with
in-process ``main([...])`` calls, which is fast and sees the same code path.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import IMGSZ, run, run_python, script
from ultralytics_triplet.cli import main

ERROR = "ultralytics-triplet: error:"


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


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its content, to show that nothing was written or changed."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory) -> Path:
    """A 3-class yolov5n checkpoint shaped like a finished ultralytics run (float16 model, train_args)."""
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    torch.manual_seed(0)
    model = DetectionModel(yaml_model_load("yolov5n.yaml"), nc=3, verbose=False)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.rand_like(t))  # distinct from any initialization, so a copy is recognizable
    model.names = {0: "rectangle", 1: "ellipse", 2: "triangle"}
    model.args = {"task": "detect", "imgsz": IMGSZ, "data": "shapes.yaml"}
    path = tmp_path_factory.mktemp("base") / "base.pt"
    torch.save({"epoch": -1, "model": model.half(), "ema": None, "train_args": dict(model.args)}, path)
    return path


# --------------------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [None, "insert", "transfer", "compare", "visualize", "demo"])
def test_help(command, tmp_path):
    p = run([*cli(), *([command] if command else []), "--help"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: ultralytics-triplet{' ' + command if command else ''}")
    assert not list(tmp_path.iterdir())


def test_no_command_and_unknown_command_exit_2(capsys):
    assert main([]) == 2
    assert_usage_error(2, capsys.readouterr().err, "COMMAND")
    assert main(["frobnicate"]) == 2
    assert_usage_error(2, capsys.readouterr().err, "frobnicate")


# --------------------------------------------------------------------------------------------------------------------
# insert
# --------------------------------------------------------------------------------------------------------------------


def test_insert_writes_a_buildable_commented_yaml(tmp_path):
    out = tmp_path / "yolov8n-ta.yaml"
    p = run([*cli(), "insert", "yolov8n.yaml", "--after", "4", "6", "8", "-o", str(out)], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "new rows 5, 8, 11" in p.stdout + p.stderr
    text = out.read_text()
    assert text.count("# inserted by ultralytics-triplet") == 3
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    from ultralytics_triplet import TripletAttention

    model = DetectionModel(yaml_model_load(str(out)), verbose=False)
    assert [i for i, m in enumerate(model.model) if isinstance(m, TripletAttention)] == [5, 8, 11]
    assert yaml.safe_load(text)["head"][1] == [[-1, 8], 1, "Concat", [1]]  # P4 skip now reads the inserted row


def test_insert_args_are_python_literals(tmp_path, capsys):
    out = tmp_path / "yolov5n-ta.yaml"
    assert main(["insert", "yolov5n.yaml", "--after", "8", "--args", "None", "True", "5", "-o", str(out)]) == 0
    row = yaml.safe_load(out.read_text())["backbone"][9]
    assert row == [-1, 1, "TripletAttention", [None, True, 5]]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--after", "99"], ["99", "out of range"]),
        (["--after", "-3"], ["-3", "out of range"]),
        (["--after", "4", "4"], ["listed twice"]),
        (["--after", "four"], ["--after", "invalid int value"]),
        (["--after"], ["--after"]),
        (["--after", "4", "--module", "NoSuchModule"], ["NoSuchModule"]),
        (["--after", "4", "--args", "0"], ["does not build", "TripletAttention"]),
        (["--after", "4", "--args", "1", "2", "3", "4"], ["does not build"]),
    ],
)
def test_insert_bad_input_exits_2_and_writes_nothing(argv, words, tmp_path, capsys):
    code = main(["insert", "yolov5n.yaml", *argv, "-o", str(tmp_path / "new.yaml")])
    assert_usage_error(code, capsys.readouterr().err, *words)
    assert not list(tmp_path.iterdir())


def test_insert_bad_paths_exit_2(tmp_path, capsys):
    code = main(["insert", str(tmp_path / "missing.yaml"), "--after", "1", "-o", str(tmp_path / "new.yaml")])
    assert_usage_error(code, capsys.readouterr().err, "missing.yaml")
    code = main(["insert", "yolov5n.yaml", "--after", "1", "-o", str(tmp_path / "new.txt")])
    assert_usage_error(code, capsys.readouterr().err, "new.txt")
    assert not list(tmp_path.iterdir())


def test_insert_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "yolov5n-ta.yaml"
    out.write_text("precious\n")
    assert_usage_error(main(["insert", "yolov5n.yaml", "--after", "8", "-o", str(out)]), capsys.readouterr().err,
                       "already exists", "--force")
    assert out.read_text() == "precious\n"
    assert main(["insert", "yolov5n.yaml", "--after", "8", "-o", str(out), "--force"]) == 0
    assert "TripletAttention" in out.read_text()


# --------------------------------------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transferred(base_pt, tmp_path_factory) -> Path:
    """``ultralytics-triplet transfer base.pt yolov5n-triplet.yaml -o out.pt`` in a fresh process."""
    out = tmp_path_factory.mktemp("transfer") / "yolov5n-triplet.pt"
    p = run([*cli(), "transfer", str(base_pt), "yolov5n-triplet.yaml", "-o", str(out)], out.parent)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    n = len(torch.load(base_pt, map_location="cpu", weights_only=False)["model"].state_dict())
    assert f"Transferred {n}/{n + 18} target tensors" in p.stdout + p.stderr  # all but the new layer's 18
    return out


def test_transfer_writes_an_ultralytics_checkpoint_with_the_base_weights(base_pt, transferred):
    from ultralytics_triplet import TripletAttention

    base = torch.load(base_pt, map_location="cpu", weights_only=False)["model"]
    ckpt = torch.load(transferred, map_location="cpu", weights_only=False)
    model = ckpt["model"]
    assert {"date", "version", "model", "train_args"} <= set(ckpt)
    assert ckpt["train_args"]["task"] == "detect" and ckpt["epoch"] == -1
    assert isinstance(model.model[9], TripletAttention) and len(model.model) == len(base.model) + 1
    assert model.names == base.names and model.yaml["nc"] == 3
    for i, layer in enumerate(base.model):  # every base layer's tensors, bit for bit, one row later from 9 on
        target = model.model[i + (i >= 9)].state_dict()
        for k, v in layer.state_dict().items():
            assert torch.equal(target[k], v), f"layer {i} {k}"
    assert next(model.parameters()).dtype == torch.float16  # the base's dtype: nothing rounded


def test_transfer_checkpoint_loads_in_yolo_with_restricted_loading(transferred, tmp_path):
    code = (f"from ultralytics import YOLO; m = YOLO({str(transferred)!r});"
            "print(m.task, type(m.model.model[9]).__name__, len(m.names))")
    p = run_python(code, tmp_path, ULTRALYTICS_SAFE_LOAD="1")
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split()[-3:] == ["detect", "TripletAttention", "3"]


@pytest.mark.slow
def test_transferred_checkpoint_trains_with_the_yolo_cli(transferred, shapes_data, tmp_path):
    cmd = [script("yolo"), "detect", "train", f"model={transferred}", f"data={shapes_data}", f"project={tmp_path}",
           "name=ft", "epochs=1", f"imgsz={IMGSZ}", "batch=8", "workers=0", "device=cpu", "plots=False"]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    loaded = re.search(r"Transferred (\d+)/(\d+) items from pretrained weights", p.stdout + p.stderr)
    assert loaded and loaded.group(1) == loaded.group(2), "the checkpoint's weights were not all loaded"
    best = torch.load(tmp_path / "ft" / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert type(best["model"].model[9]).__name__ == "TripletAttention"


def test_transfer_corrupt_or_missing_checkpoint_exits_2(base_pt, tmp_path, capsys):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(base_pt.read_bytes()[: base_pt.stat().st_size // 2])
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    empty = tmp_path / "empty.pt"
    empty.touch()
    before = files(tmp_path)
    for bad in (truncated, junk, empty):
        code = main(["transfer", str(bad), "yolov5n-triplet.yaml", "-o", str(tmp_path / "out.pt")])
        assert_usage_error(code, capsys.readouterr().err, bad.name, "checkpoint")
    code = main(["transfer", str(tmp_path / "yolov5n.pt"), "yolov5n-triplet.yaml", "-o", str(tmp_path / "out.pt")])
    assert_usage_error(code, capsys.readouterr().err, "yolov5n.pt", "not found")  # never downloaded by name
    code = main(["transfer", str(base_pt), "no-such-model.yaml", "-o", str(tmp_path / "out.pt")])
    assert_usage_error(code, capsys.readouterr().err, "no-such-model.yaml")
    code = main(["transfer", str(base_pt), "yolov5n-triplet.yaml", "-o", str(tmp_path / "out.pth")])
    assert_usage_error(code, capsys.readouterr().err, "out.pth")
    assert files(tmp_path) == before


def test_transfer_refuses_to_overwrite_without_force(base_pt, tmp_path, capsys):
    out = tmp_path / "out.pt"
    out.write_bytes(b"precious")
    code = main(["transfer", str(base_pt), "yolov5n-triplet.yaml", "-o", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "already exists")
    assert out.read_bytes() == b"precious"


# --------------------------------------------------------------------------------------------------------------------
# compare / visualize
# --------------------------------------------------------------------------------------------------------------------


def test_compare_prints_a_table_and_writes_a_chart(tmp_path):
    chart = tmp_path / "chart.png"
    cmd = [*cli(), "compare", "yolov5n.yaml", "yolov5n-triplet.yaml", "--imgsz", "64", "--runs", "2", "-o", str(chart)]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    row = next(line for line in out.splitlines() if line.startswith("parameters"))
    assert "+300" in row
    assert "GFLOPs @64" in out and "CPU latency ms (median of 2, 1 thread)" in out
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "argv, words",
    [
        (["yolov5n.yaml", "missing.yaml"], ["missing.yaml", "not found"]),
        (["yolov5n.yaml", "missing.pt"], ["missing.pt", "not found"]),
        (["yolov5n.yaml", "yolov5n.yaml", "--runs", "0"], ["runs"]),
        (["yolov5n.yaml", "yolov5n.yaml", "--imgsz", "100"], ["multiple of 32"]),
        (["yolov5n.yaml", "yolov5n.yaml", "--imgsz", "big"], ["--imgsz"]),
        (["yolov5n.yaml", "model.onnx"], ["model.onnx"]),
        (["yolov5n.yaml"], ["B"]),
    ],
)
def test_compare_bad_input_exits_2(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_usage_error(main(["compare", *argv, "-o", "chart.png"]), capsys.readouterr().err, *words)
    assert not list(tmp_path.iterdir())


def test_compare_refuses_to_overwrite_the_chart(tmp_path, capsys):
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"precious")
    code = main(["compare", "yolov5n.yaml", "yolov5n.yaml", "--imgsz", "64", "--runs", "1", "-o", str(chart)])
    assert_usage_error(code, capsys.readouterr().err, "already exists")
    assert chart.read_bytes() == b"precious"


def test_visualize_writes_a_picture(transferred, shapes_data, tmp_path):
    image = sorted((shapes_data.parent / "images" / "val").iterdir())[0]
    out = tmp_path / "gates.png"
    p = run([*cli(), "visualize", str(transferred), str(image), "-o", str(out), "--imgsz", str(IMGSZ)], tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_visualize_bad_input_exits_2(shapes_data, tmp_path, capsys):
    image = str(sorted((shapes_data.parent / "images" / "val").iterdir())[0])
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    out = str(tmp_path / "gates.png")
    cases = [
        (["yolov5n-triplet.yaml", str(tmp_path / "missing.jpg")], ["missing.jpg", "not found"]),
        (["yolov5n-triplet.yaml", str(not_image)], ["notes.png", "not a readable image"]),
        (["yolov5n.yaml", image], ["no TripletAttention layer"]),
        (["yolov5n-triplet.yaml", image, "--imgsz", "50"], ["multiple of 32"]),
        ([str(tmp_path / "missing.pt"), image], ["missing.pt", "not found"]),
    ]
    for argv, words in cases:
        assert_usage_error(main(["visualize", *argv, "-o", out]), capsys.readouterr().err, *words)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.png"]
    Path(out).write_bytes(b"precious")
    assert_usage_error(main(["visualize", "yolov5n-triplet.yaml", image, "-o", out, "--imgsz", "64"]),
                       capsys.readouterr().err, "already exists")
    assert Path(out).read_bytes() == b"precious"


# --------------------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------------------


def test_demo_refuses_a_non_empty_out(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("precious")
    assert_usage_error(main(["demo", "--out", str(tmp_path)]), capsys.readouterr().err, "not empty", "--force")
    assert files(tmp_path) == {"keep.txt": b"precious"}
    assert_usage_error(main(["demo", "--out", str(tmp_path / "keep.txt")]), capsys.readouterr().err, "not a directory")
    assert_usage_error(main(["demo", "--out", str(tmp_path / "new"), "--imgsz", "100"]), capsys.readouterr().err,
                       "multiple of 32")
    assert_usage_error(main(["demo", "--out", str(tmp_path / "new"), "--epochs", "0"]), capsys.readouterr().err,
                       "--epochs")
    assert files(tmp_path) == {"keep.txt": b"precious"}


@pytest.mark.slow
def test_demo_trains_both_models_and_reports(tmp_path):
    out = tmp_path / "demo"
    (out).mkdir()
    (out / "keep.txt").write_text("precious")  # --force reuses the directory but leaves foreign files alone
    cmd = [*cli(), "demo", "--out", str(out), "--force", "--epochs", "1", "--imgsz", str(IMGSZ),
           "--train-images", "8", "--batch", "8"]
    p = run(cmd, tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    table = (out / "results.txt").read_text()
    for word in ("yolov5n-triplet.yaml", "yolov5n.yaml", "parameters", "GFLOPs", "mAP50-95", "train wall time"):
        assert word in table
    params = re.search(r"^parameters\s+([\d,]+)\s+([\d,]+)", table, re.M)
    assert int(params.group(1).replace(",", "")) - int(params.group(2).replace(",", "")) == 300
    assert table.splitlines()[1] in p.stdout + p.stderr  # the table was printed
    assert (out / "gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("yolov5n-triplet", "yolov5n"):
        assert (out / "runs" / name / "weights" / "best.pt").is_file()
    assert (out / "shapes" / "data.yaml").is_file() and (out / "keep.txt").read_text() == "precious"
    assert str(out) in p.stdout + p.stderr  # says where the results are


def test_insert_malformed_yaml_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [[-1, 1, Conv\nhead: {")
    code = main(["insert", str(bad), "--after", "1", "-o", str(tmp_path / "new.yaml")])
    assert_usage_error(code, capsys.readouterr().err, "bad.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
