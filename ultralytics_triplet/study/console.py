"""A study's console: one progress bar over its runs, and each run's ultralytics log in its own run folder.

By default the console shows one progress bar (ultralytics' own ``TQDM``, as its trainer draws it) over the epochs
of every run still to train, with the current run, its epoch and the time left. Everything a run prints goes to
``runs/RUN/train.log``: ultralytics' log, its per-batch progress bars, and whatever is written to the process's
standard output and error (the dataloader workers and DDP processes it starts included). Warnings and errors reach
the console too, each line led by the run's name.

With ``verbose`` the runs print as ultralytics prints them, and their log lines are also written to ``train.log``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ultralytics.utils import LOGGER, TQDM

from .._text import PREFIX, duration

__all__ = ("LOG_FILE", "Console", "Steps", "captured", "progress_bar")

LOG_FILE = "train.log"  # in each run folder


def progress_bar(total: int, desc: str, unit: str, file: Any):
    """ultralytics' own progress bar (``ultralytics.utils.TQDM``, as its trainer draws it) on ``file``."""
    return TQDM(total=total, desc=desc, unit=unit, file=file)


def _duplicate(stream: IO[str]) -> tuple[IO[str], bool]:
    """A stream on a copy of ``stream``'s file descriptor (unaffected when that descriptor is redirected), and
    whether it is a copy to close; ``stream`` itself when it has no descriptor (a notebook, a test's capture)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both an OSError and a ValueError
        return stream, False
    stream.flush()
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return os.fdopen(os.dup(fd), "w", encoding=encoding, errors="replace", buffering=1), True


def _writer(stream: IO[str]) -> Callable[[str], None]:
    """Write one line to ``stream`` at once."""

    def write(line: str) -> None:
        stream.write(line + "\n")
        stream.flush()

    return write


class _Echo(logging.Handler):
    """Pass ultralytics' warnings and errors on to the console while a run's log goes to its file."""

    def __init__(self, write: Callable[[str], None], label: str):
        super().__init__(logging.WARNING)
        self._write, self._label = write, label

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's message as one line, led by the run's name and its level."""
        text = record.getMessage()  # ultralytics' own handler may have put its level prefix in already
        if not text.startswith(record.levelname):
            text = f"{record.levelname} {text}"
        self._write(f"{self._label}: {text}")


@contextlib.contextmanager
def _descriptors_to(log: IO[str]) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``log``: what child processes and C libraries print goes there too."""
    saved = []
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            saved.append((fd, os.dup(fd)))
    try:
        for fd, _ in saved:
            os.dup2(log.fileno(), fd)
        yield
    finally:
        log.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def _warnings_to(write: Callable[[str], None], log: IO[str], label: str) -> Iterator[None]:
    """Show Python warnings on the console (led by the run's name) and in the log."""
    show = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
        log.write(text + "\n")
        write(f"{label}: {text}")

    warnings.showwarning = showwarning
    try:
        yield
    finally:
        warnings.showwarning = show


@contextlib.contextmanager
def captured(path: Path, verbose: bool, label: str, write: Callable[[str], None] | None = None) -> Iterator[None]:
    """Write what a run prints into ``path`` (appended); unless ``verbose``, only its warnings and errors also reach
    the console, through ``write`` (default: this process's standard error).

    Args:
        path (Path): The run's log file.
        verbose (bool): Let the run print to the console as ultralytics prints; its log lines also go to ``path``.
        label (str): What leads each warning line on the console (the run's name).
        write (Callable[[str], None] | None): Writes one line on the console without breaking the progress bar.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", errors="replace", buffering=1) as log, contextlib.ExitStack() as stack:
        if verbose:
            handler = logging.StreamHandler(log)
            handler.setLevel(logging.INFO)
            LOGGER.addHandler(handler)
            stack.callback(LOGGER.removeHandler, handler)
            yield
            return
        if write is None:
            console, own = _duplicate(sys.stderr)
            if own:
                stack.callback(console.close)
            write = _writer(console)
        stack.enter_context(_descriptors_to(log))
        stack.enter_context(contextlib.redirect_stdout(log))
        stack.enter_context(contextlib.redirect_stderr(log))
        for handler in LOGGER.handlers:  # ultralytics' console handler writes to the stream it was given
            if type(handler) is logging.StreamHandler:
                old = handler.setStream(log)
                if old is not None:
                    stack.callback(handler.setStream, old)
        echo = _Echo(write, label)
        LOGGER.addHandler(echo)
        stack.callback(LOGGER.removeHandler, echo)
        stack.enter_context(_warnings_to(write, log, label))
        yield


class _Bar:
    """One progress bar on the console (ultralytics' TQDM on a copy of standard output, so a run's redirection of its
    output leaves it alone), and lines written above it."""

    def __init__(self, total: int, desc: str, unit: str, show: bool = True):
        self.stream, self._own = _duplicate(sys.stdout)
        self.desc = desc
        self.bar = progress_bar(total=total, desc=desc, unit=unit, file=self.stream) if show else None

    def write(self, line: str) -> None:
        """Write one line on the console, above the bar."""
        if self.bar is not None:
            self.bar.clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        if self.bar is not None:
            self.bar.refresh()

    def _describe(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(f"{self.desc} {text}")

    def _advance(self, n: int) -> None:
        if self.bar is not None and n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def close(self) -> None:
        """End the bar (left on the console) and release the console's stream; again, do nothing."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._own:
            self.stream.close()
            self._own = False
        elif not self.stream.closed:
            self.stream.flush()


class Steps(_Bar):
    """A progress bar over a few long steps, such as the exports the latency column needs: ``latency: export
    yolov5n.yaml (2/6)``."""

    def __init__(self, total: int, desc: str, unit: str):
        """Start the bar over ``total`` steps."""
        super().__init__(total, desc, unit)
        self.total, self.done = total, 0

    def start(self, what: str) -> None:
        """A step starts."""
        self._describe(f"{what} ({self.done + 1}/{self.total})")

    def finish(self) -> None:
        """The step finished."""
        self.done += 1
        self._advance(self.done)


class Console(_Bar):
    """What a study shows while it trains: one progress bar over the runs, or, ``verbose``, a line after each run.

    The bar counts epochs (a resumed run starts where it stopped, a run validated again jumps to its end) and shows
    the run now training: ``yolov5n-triplet-seed1 (run 4/6) epoch 3/10``.
    """

    def __init__(self, todo: Sequence[Any], total: int, verbose: bool):
        """Start the console for ``todo`` (the runs to train) out of ``total`` runs."""
        super().__init__(sum(s.epochs for s in todo), "study", "epoch", show=bool(todo) and not verbose)
        self.log, self.verbose, self.total, self.todo = LOGGER, verbose, total, len(todo)
        self.done_before, self.finished, self.epochs_done, self.run = total - len(todo), 0, 0, ""
        self.t0 = time.perf_counter()

    def start(self, name: str) -> None:
        """A run starts training here."""
        self.run = f"{name} (run {self.done_before + self.finished + 1}/{self.total})"
        self._describe(self.run)

    def epoch(self, epoch: int, epochs: int) -> None:
        """The run that trains here finished ``epoch`` of ``epochs``."""
        epoch = min(epoch, epochs)  # ultralytics 8.4 reports once more after the final validation, one epoch past
        self._advance(self.epochs_done + epoch)
        self._describe(f"{self.run} epoch {epoch}/{epochs}")

    def done(self, name: str, status: str, epochs: int) -> None:
        """A run finished (``status`` as recorded) after ``epochs`` epochs of budget."""
        self.finished += 1
        self.epochs_done += epochs
        self._advance(self.epochs_done)
        left = self.todo - self.finished
        if self.bar is not None:
            self._describe(f"{self.done_before + self.finished}/{self.total} runs done")
        else:
            eta = (time.perf_counter() - self.t0) / self.finished * left
            self.log.info(f"{PREFIX} study: {self.done_before + self.finished}/{self.total} runs done ({name} "
                          f"{status}), ETA {duration(eta) if left else '0 s'}")
