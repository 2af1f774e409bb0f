"""A study's console (``ultralytics_triplet.study.console``): each run's log in its own file, warnings on the console,
and one progress bar over the runs (or the steps of the latency's exports)."""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings

import pytest

from ultralytics_triplet.study.console import Console, Steps, captured, progress_bar

pytestmark = pytest.mark.compat


def test_a_quiet_run_prints_into_its_log_and_only_warnings_reach_the_console(tmp_path, capfd):
    from ultralytics.utils import LOGGER

    log, console = tmp_path / "run" / "train.log", []
    with captured(log, verbose=False, label="yolov5n-seed0", write=console.append):
        LOGGER.info("an info line")
        print("a printed line")
        sys.stderr.write("an error stream line\n")
        os.write(1, b"a line on file descriptor 1\n")  # what a child process (DDP, a dataloader worker) writes
        os.write(2, b"a line on file descriptor 2\n")
        LOGGER.warning("a logged warning")
        warnings.warn("a python warning", UserWarning, stacklevel=1)
    text = log.read_text(encoding="utf-8")
    for line in ("an info line", "a printed line", "an error stream line", "a line on file descriptor 1",
                 "a line on file descriptor 2", "a logged warning", "a python warning"):
        assert line in text
    assert len(console) == 2 and all(c.startswith("yolov5n-seed0: ") for c in console)
    assert "WARNING" in console[0] and "a logged warning" in console[0]
    assert "UserWarning: a python warning" in console[1]
    out, err = capfd.readouterr()
    assert "an info line" not in out + err and "file descriptor" not in out + err
    LOGGER.info("after the run")  # everything is back in place
    print("printed after")
    out, _ = capfd.readouterr()
    assert "printed after" in out


def test_a_verbose_run_prints_as_ultralytics_prints_and_keeps_its_log_lines(tmp_path):
    from ultralytics.utils import LOGGER

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    LOGGER.addHandler(handler)
    try:
        log = tmp_path / "train.log"
        with captured(log, verbose=True, label="run"):
            LOGGER.info("an info line")
    finally:
        LOGGER.removeHandler(handler)
    assert "an info line" in stream.getvalue() and "an info line" in log.read_text(encoding="utf-8")


class Spec:
    """What the console reads of a run: its epochs."""

    epochs = 2


def test_the_console_is_one_progress_bar_over_the_runs_with_the_current_run_and_epoch(capsys):
    console = Console([Spec(), Spec()], total=3, verbose=False)  # one run of three recorded before, two to train
    bar = console.bar

    def shown():
        return bar.n, bar.desc.rstrip(": ")  # tqdm (ultralytics 8.3) ends the description with ': '

    try:
        assert bar.total == 4  # epochs still to train
        console.start("yolov5n-seed0")
        console.epoch(1, 2)
        assert shown() == (1, "study yolov5n-seed0 (run 2/3) epoch 1/2")
        console.epoch(2, 2)
        console.epoch(3, 2)  # ultralytics reports once more after the final validation
        assert shown() == (2, "study yolov5n-seed0 (run 2/3) epoch 2/2")
        console.done("yolov5n-seed0", "trained", 2)
        assert shown() == (2, "study 2/3 runs done")
        console.write("yolov5n-seed1: WARNING something")
        console.start("yolov5n-seed1")
        console.done("yolov5n-seed1", "revalidated", 2)  # a run validated again jumps to its end
        assert shown() == (4, "study 3/3 runs done")
    finally:
        console.close()
    console.close()  # closing twice (an interrupted study closes it, then its `finally`) is harmless
    out = capsys.readouterr().out
    assert "yolov5n-seed1: WARNING something\n" in out
    assert out.count("\n") == 2  # the warning's line and the bar's: the bar is redrawn in place, never a new line
    assert "study 3/3 runs done" in out.split("\n")[-2].split("\r")[-1]


def test_progress_bar_is_ultralytics_bar_on_the_given_stream():
    from ultralytics.utils import TQDM

    stream = io.StringIO()
    bar = progress_bar(total=3, desc="study", unit="epoch", file=stream)
    assert isinstance(bar, TQDM)
    bar.update(3)
    bar.set_description("study 3/3 runs done")
    bar.close()
    assert "study 3/3 runs done" in stream.getvalue() and "3/3" in stream.getvalue()


def test_steps_are_one_bar_naming_the_step_and_lines_go_above_it(capsys):
    steps = Steps(2, "latency ONNX Runtime: export", "model")
    try:
        steps.start("yolov5n.yaml")
        assert steps.bar.desc.rstrip(": ") == "latency ONNX Runtime: export yolov5n.yaml (1/2)"
        steps.finish()
        steps.write("export yolov5s.yaml: WARNING something")
        steps.start("yolov5s.yaml")
        steps.finish()
        assert steps.bar.n == 2
    finally:
        steps.close()
    out = capsys.readouterr().out
    assert "export yolov5s.yaml: WARNING something\n" in out and "(2/2)" in out


def test_a_verbose_console_logs_one_line_per_run_and_draws_no_bar():
    from ultralytics.utils import LOGGER

    lines = []
    handler = logging.Handler()
    handler.emit = lambda r: lines.append(r.getMessage())
    LOGGER.addHandler(handler)
    try:
        console = Console([Spec()], total=1, verbose=True)
        console.done("yolov5n-seed0", "trained", 2)
        console.close()
    finally:
        LOGGER.removeHandler(handler)
    assert console.bar is None
    assert lines == ["ultralytics-triplet: study: 1/1 runs done (yolov5n-seed0 trained), ETA 0 s"]

