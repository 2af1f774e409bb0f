"""The ``ultralytics-triplet`` command's argument validation (``ultralytics_triplet.cli``), through in-process
``main([...])`` calls, which are fast and see the same code path as the console script: bad input exits 2 with one
line and writes nothing; what the library says is said in the command's words (``--out``, ``pass --force``, ``the
same command``) from the parts its errors carry."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from helpers import assert_usage_error

from ultralytics_triplet.cli import main

pytestmark = pytest.mark.compat  # but for the Ray test, marked newest_only


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


# --------------------------------------------------------------------------------------------------------------- study


@pytest.mark.parametrize("placement, words", [
    ("after:99", ["'after:99'", "layer 99 is out of range", "valid layer indices are 0..", "the backbone is 0..9"]),
    ("after:-1", ["'after:-1'", "out of range", "valid layer indices are 0.."]),
    ("after:4,x", ["'after:4,x'", "'x' is not an int layer index", "valid layer indices are 0.."]),
    ("after:", ["'after:' is empty", "valid layer indices are 0.."]),
    ("after:4,4", ["layer 4 is listed twice", "valid layer indices are 0.."]),
])
def test_study_bad_position_is_one_line_listing_the_valid_indices_and_writes_nothing(placement, words, shapes_data,
                                                                                         tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet", placement,
            "--out", str(out)]
    assert_usage_error(main(argv), capsys.readouterr().err, "--placements", *words)
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--data", "{tmp}/missing.yaml"], ["missing.yaml", "not found"]),
    (["--placements", "triplet", "cbam"], ["'cbam'", "known placements: triplet, triplet-neck, triplet-dense, "
                                                     "after:I[,J...], each-backbone"]),
    (["--placements", "triplet", "after:8"], ["'triplet' and 'after:8' build the same model"]),
    (["--seeds", "1"], ["seeds", ">= 2"]),
    (["--model", "{tmp}/nope.yaml"], ["nope.yaml", "not found"]),
    (["--pretrained", "{tmp}/base.pt"], ["base.pt", "not found"]),
    (["--address", "127.0.0.1:6379"], ["--address", "--backend ray"]),
    (["--epochs", "0"], ["epochs", ">= 1"]),
    (["--modules", "Nope"], ["--modules", "'Nope'", "registered modules: TripletAttention (triplet), CBAM (triplet)"]),
    (["--modules", "CBAM", "CBAM"], ["--modules", "listed twice"]),
    (["--model", "yolov5x.yaml", "--references", "scale-up"],
     ["--references", "'scale-up': yolov5x.yaml is the largest scale of its family (n, s, m, l, x)",
      "valid choices: a model config, e.g. yolov5n.yaml, yolov5s.yaml, yolov5m.yaml, yolov5l.yaml"]),
    (["--model", "yolov3.yaml", "--references", "scale-up"], ["--references", "'scale-up': yolov3.yaml has no scale",
                                                             "valid choices: a model config"]),
    (["--references", "yolov5n.yaml"], ["--references", "'yolov5n.yaml' builds the plain model itself"]),
    (["--references", "{tmp}/nope.yaml"], ["--references", "nope.yaml", "does not resolve"]),
    (["--references", "yolov5s.pt"], ["--references", "'yolov5s.pt' is neither scale-up nor a model config"]),
    (["--latency", "tensorrt"], ["--latency", "invalid choice"]),
    (["--detect", "0"], ["--detect must be a difference of the verdict's metric above 0 and at most 1, got 0.0"]),
    (["--detect", "1.5"], ["--detect", "at most 1, got 1.5"]),
    (["--detect", "nan"], ["--detect", "got nan"]),
])
def test_study_bad_input_is_one_line_and_writes_nothing(args, words, shapes_data, tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--out", str(out), *args]
    assert_usage_error(main([a.format(tmp=tmp_path) for a in argv]), capsys.readouterr().err, *words)
    assert not out.exists()


def test_study_a_placement_without_a_config_is_refused(shapes_data, tmp_path, capsys):
    """A model given by path has no generated placements: its -triplet.yaml must exist beside it."""
    from ultralytics.utils.checks import check_yaml

    model = tmp_path / "mynet.yaml"
    shutil.copy(check_yaml("yolov5.yaml"), model)
    out = tmp_path / "study"
    argv = ["study", "--data", str(shapes_data), "--model", str(model), "--placements", "triplet", "--out", str(out)]
    assert_usage_error(main(argv), capsys.readouterr().err, "triplet", "mynet-triplet.yaml", "does not resolve")
    assert not out.exists()


def test_study_refuses_a_folder_with_other_files(shapes_data, tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "not empty", "holds no study")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("latency, missing", [("openvino", "openvino"), ("onnx", "onnxruntime")])
def test_study_latency_runtime_that_is_not_installed_is_one_line_naming_its_extra(latency, missing, shapes_data,
                                                                                    tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # what an import meets where the extra is not installed
    out = tmp_path / "study"
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
                 "--latency", latency, "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, f"--latency '{latency}' needs {missing}",
                       f"pip install 'ultralytics-triplet[{latency}]'")
    assert not out.exists()


@pytest.mark.newest_only
def test_study_ray_backend_without_ray_prints_the_install_hint(shapes_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    out = tmp_path / "study"
    code = main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet",
                 "--backend", "ray", "--out", str(out)])
    assert_usage_error(code, capsys.readouterr().err, "pip install 'ultralytics-triplet[ray]'")
    assert not out.exists()


def test_study_options_are_the_flags_gathered_into_one_object(shapes_data, tmp_path, monkeypatch):
    from ultralytics_triplet.study import steps
    from ultralytics_triplet.study.options import StudyOptions

    seen = []

    def interrupted(options):  # what the command hands over; then Ctrl-C, before anything is done
        seen.append(options)
        raise KeyboardInterrupt

    monkeypatch.setattr(steps, "conduct", interrupted)
    assert main(["study", "--data", str(shapes_data), "--model", "yolov5n.yaml", "--placements", "triplet", "after:4",
                 "--seeds", "2", "--device", "cpu", "--workers", "0", "--detect", "0.02",
                 "--out", str(tmp_path / "study")]) == 130
    assert main(["study", "--data", str(shapes_data)]) == 130
    assert seen == [
        StudyOptions(data=str(shapes_data), model="yolov5n.yaml", placements=["triplet", "after:4"], seeds=2,
                     device="cpu", out=str(tmp_path / "study"), modules=["TripletAttention"], references=[],
                     detect=0.02, train_args={"workers": 0}),
        StudyOptions(data=str(shapes_data), placements=list(StudyOptions.placements), modules=["TripletAttention"],
                     references=[]),  # every default is the options' own
    ]


@pytest.mark.parametrize("remedy, words", [
    ("ANOTHER_LATENCY", "every run is recorded: the same command with another --latency reports them"),
    ("RETRY", "the same command again retries the missing runs"),
])
def test_study_a_failure_after_training_says_what_to_do_in_the_commands_words(remedy, words, shapes_data, tmp_path,
                                                                             monkeypatch, capsys):
    """Exit status 1: not a usage error; the library's remedy (``same call``, ``latency``) as the command says it."""
    from ultralytics_triplet._checks import fail
    from ultralytics_triplet.study import backends, costs, steps

    remedy = getattr(costs, remedy, None) or getattr(backends, remedy)

    def failing(options):
        raise fail(RuntimeError, None, "it failed", remedy)

    monkeypatch.setattr(steps, "conduct", failing)
    assert main(["study", "--data", str(shapes_data), "--out", str(tmp_path / "study")]) == 1
    assert capsys.readouterr().err == f"ultralytics-triplet: it failed; {words}\n"
    assert remedy.python != remedy.command  # the Python caller reads its own words


def test_study_passes_a_foreign_message_on_as_it_is(shapes_data, tmp_path, monkeypatch, capsys):
    from ultralytics_triplet.study import steps

    def failing(options):
        raise RuntimeError("the same call with another latency\nfails")  # words the library uses, from elsewhere

    monkeypatch.setattr(steps, "conduct", failing)
    assert main(["study", "--data", str(shapes_data), "--out", str(tmp_path / "study")]) == 1
    assert capsys.readouterr().err == "ultralytics-triplet: the same call with another latency fails\n"
