"""The ``ultralytics-triplet`` command's argument validation (``ultralytics_triplet.cli``), through in-process
``main([...])`` calls, which are fast and see the same code path as the console script: bad input exits 2 with one
line and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import assert_usage_error

from ultralytics_triplet.cli import main

pytestmark = pytest.mark.compat


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its content, to show that nothing was written or changed."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -------------------------------------------------------------------------------------------------------------- parser


def test_no_command_and_unknown_command_exit_2(capsys):
    assert main([]) == 2
    assert_usage_error(2, capsys.readouterr().err, "COMMAND")
    assert main(["frobnicate"]) == 2
    assert_usage_error(2, capsys.readouterr().err, "frobnicate")


# -------------------------------------------------------------------------------------------------------------- insert


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


def test_insert_malformed_yaml_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("backbone: [[-1, 1, Conv\nhead: {")
    code = main(["insert", str(bad), "--after", "1", "-o", str(tmp_path / "new.yaml")])
    assert_usage_error(code, capsys.readouterr().err, "bad.yaml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


# ------------------------------------------------------------------------------------------------------------ transfer


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


# ------------------------------------------------------------------------------------------------- compare / visualize


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
