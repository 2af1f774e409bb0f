"""The README's test command as named nox sessions. ``bash scripts/test.sh`` brings nox into a throw-away environment
and runs every session, in this order; with nox installed, ``nox -s NAME`` runs one from the checkout's root.

- ``lint``: ruff on the checkout, and ``mkdocs build --strict`` of the docs (a broken link fails).
- ``suite``: the whole suite but the heavy exports, against the wheel built from this checkout and installed
  non-editable with its ``test`` extra: the newest ultralytics pip finds, the torch pip resolves for the interpreter
  that runs nox.
- ``unit-3.9``: the unit tests under the oldest Python the package declares (its classifiers).
- ``compat``: the tests marked ``compat``, against the oldest supported ultralytics (the lower bound of the dependency
  declared in pyproject.toml), installed to a folder on ``PYTHONPATH`` beside the suite's environment.
- ``unit-3.13``: the unit tests under the newest declared Python, with the newest torch release on the index: pip's
  configured constraints are set aside there (``NEWEST_TORCH=0`` keeps them).
- ``heavy``: the heavy export tests (PaddlePaddle, ExecuTorch, TensorFlow SavedModel and its TFLite), in the suite's
  environment after its ``test-heavy`` extra, which moves numpy and onnx: so it comes after suite and compat.

pip installs every environment, so pip's configuration (constraints, indexes) holds as on a user's machine. The suite,
compat and heavy share one environment; a unit session's own is removed after its tests, and built only while no other
one is on disk, so a run holds at most two torch installs. A Python this machine lacks skips its session, in one line.
Each session names the Python, torch and ultralytics it tested with, in its log and, when ``TEST_SUMMARY`` names a
file, in a line added there (the bootstrap prints them at the end). Every ultralytics process of a session reads and
writes its settings in a throw-away folder (``YOLO_CONFIG_DIR``).

With ``TEST_PREBUILD=1`` (scripts/test.sh, which runs every session in order, sets it) the installs of a later session
run in the background while an earlier session tests (see ``ALONGSIDE``), never touching the environment under test:
the oldest Python's environment during the suite, the newest's during compat, the heavy tools during the newest
Python's unit tests. That order of sessions is what lets each of those installs overlap a test run.

Arguments after ``--`` go to pytest and narrow each session's own selection: ``-m EXPR`` joins the session's marker
expression as ``(EXPR) and (its own)``; ``-k EXPR`` and the rest are passed on. A narrowed session that selects nothing
passes, without installing the heavy tools or another Python's environment for nothing.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nox

nox.options.reuse_venv = "no"
nox.options.error_on_missing_interpreters = False  # nox turns it on where CI is set; a missing Python is a skip

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
DECLARED_PYTHONS = nox.project.python_versions(PYPROJECT)  # from the classifiers, oldest first
OLDEST_PY, NEWEST_PY = DECLARED_PYTHONS[0], DECLARED_PYTHONS[-1]
_LOWER_BOUND = re.compile(r"ultralytics\s*>=\s*([\d.]+)")
OLDEST_ULTRALYTICS = next(m[1] for dep in PYPROJECT["project"]["dependencies"] if (m := _LOWER_BOUND.match(dep)))

# Each session's environment, in one place. "{wheel}" is the wheel built from this checkout (installed non-editable).
LINT = PYPROJECT["project"]["optional-dependencies"]["lint"]  # ruff and mkdocs alone, pinned in pyproject.toml
SUITE = ["{wheel}[test]"]  # the suite's environment, which compat and heavy add to
COMPAT_ULTRALYTICS = [f"ultralytics=={OLDEST_ULTRALYTICS}"]  # --no-deps, to a folder put first on PYTHONPATH
COMPAT = ["tqdm", "pandas", "seaborn", "py-cpuinfo", "scipy"]  # what that release needs and the newest does not
HEAVY = ["{wheel}[test-heavy]"]
# onnx: the unit tests that read exported graphs run too; scipy: the reference the study's power is checked against
UNIT = ["{wheel}", "pytest>=7", "onnx", "onnxruntime", "scipy"]
NEWEST_TORCH = os.environ.get("NEWEST_TORCH", "1") == "1"  # unit-NEWEST_PY sets pip's constraints aside
TEST_ENV = {"ULTRALYTICS_TRIPLET_TEST_WHEEL": "1", "OMP_NUM_THREADS": "2"}  # what every session's tests see

# TEST_PREBUILD=1: while a session's tests run, the installs of the session named here run in the background. None
# touches the environment under test, and a unit environment is built only while no other one is on disk.
ALONGSIDE = {"suite": f"unit-{OLDEST_PY}", "compat": f"unit-{NEWEST_PY}", f"unit-{NEWEST_PY}": "heavy"}
PREBUILD = os.environ.get("TEST_PREBUILD") == "1"


# ------------------------------------------------------------------------------------------------ steps and their lines

_TESTED: dict[str, str] = {}  # session name -> "Python X, torch Y, ultralytics Z"
_SKIPPED: dict[str, str] = {}  # session name -> why it was skipped
_INSTALLED: dict[str, str] = {}  # session name -> how long its installs took, and whether in the background


def step(func):
    """Run a session as one step: time it, and add ``name: Python, torch, ultralytics: passed (N s)`` (or failed, or
    skipped and why) to the summary file ``TEST_SUMMARY``."""

    @functools.wraps(func)
    def session(s: nox.Session) -> None:
        start, outcome = time.monotonic(), "failed"
        try:
            func(s)
            outcome = "passed"
        finally:
            if s.name in _SKIPPED:
                outcome = f"skipped, {_SKIPPED[s.name]}"
            took = f"{time.monotonic() - start:.0f} s" + (f"; installs: {_INSTALLED[s.name]}" if s.name in _INSTALLED
                                                          else "")
            line = f"{s.name}: {_TESTED.get(s.name, '-')}: {outcome} ({took})"
            if os.environ.get("TEST_SUMMARY"):
                with open(os.environ["TEST_SUMMARY"], "a", encoding="utf-8") as f:
                    f.write(line + "\n")

    return session


def skip(session: nox.Session, why: str) -> None:
    """Skip the session with one line that says why."""
    _SKIPPED[session.name] = why
    session.skip(why)


def tested(session: nox.Session, python: str, env: dict[str, str]) -> str:
    """Say which Python, torch and ultralytics the session tests with; return the ultralytics version."""
    out = session.run(python, str(ROOT / "scripts" / "versions.py"), external=True, silent=True, env=env)
    _TESTED[session.name] = out.strip().splitlines()[-1]
    session.log(f"{session.name}: {_TESTED[session.name]}")
    return _TESTED[session.name].rsplit("ultralytics ", 1)[-1]


def settings_dir(session: nox.Session) -> str:
    """A throw-away ultralytics settings folder for the session, under its folder of the nox run."""
    path = session.env_dir / "ultralytics-settings"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


# ------------------------------------------------------------------------------------------------ installs

_BG: list[subprocess.Popen] = []  # background installs still running, ended if nox exits first
atexit.register(lambda: [p.kill() for p in _BG if p.poll() is None])
_REMOVALS: list[threading.Thread] = []  # environments being removed; every install waits for them first


def remove_in_background(location: Path) -> None:
    """Remove an environment in a thread (a torch install is many files): the next install starts only once it is gone,
    so a run still holds at most two torch installs."""
    if location.exists():
        doomed = location.with_name(f"{location.name}.removing")
        shutil.rmtree(doomed, ignore_errors=True)  # left by an interrupted run in a reused --envdir
        location.rename(doomed)
        thread = threading.Thread(target=shutil.rmtree, args=(doomed,), kwargs={"ignore_errors": True}, daemon=True)
        thread.start()
        _REMOVALS.append(thread)


def free_space(path: Path) -> str:
    """Free space on the file system that holds ``path``, e.g. ``"74.2 GB"``."""
    return f"{shutil.disk_usage(path).free / 2**30:.1f} GB"


class Install:
    """Commands that install a session's environment, run in order in a thread, their output in a log file.

    ``run`` waits for them where they were started earlier in the background (``start``), and fails the session with
    the end of the log if one failed.
    """

    def __init__(self, name: str, where: Path, commands: list[list[str]], env: dict[str, str] | None = None) -> None:
        self.name, self.where, self.commands, self.env = name, where, commands, env or {}
        self.log = where.parent / f"{name}-install.log"
        self.thread: threading.Thread | None = None
        self.failed: str | None = None
        self.seconds = 0.0
        self.background = False

    def _work(self) -> None:
        for removal in _REMOVALS:
            removal.join()
        start = time.monotonic()
        with open(self.log, "w", encoding="utf-8") as log:
            for cmd in self.commands:
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
                _BG.append(proc)
                if proc.wait():
                    self.failed = f"{cmd[0]} exited {proc.returncode}"
                    break
        self.seconds = time.monotonic() - start

    def start(self, session: nox.Session, background: bool = False) -> None:
        """Start the commands (once) in a thread, telling the free space where they install."""
        if self.thread is None:
            self.where.parent.mkdir(parents=True, exist_ok=True)
            self.background = background
            session.log(f"{self.name}: installing{' in the background' if background else ''} "
                        f"({free_space(self.where.parent)} free in {self.where.parent}; log {self.log})")
            self.thread = threading.Thread(target=self._work, daemon=True)
            self.thread.start()

    def run(self, session: nox.Session) -> None:
        """Wait for the commands (starting them if nobody has); fail the session with the end of the log if one did."""
        self.start(session)
        self.thread.join()
        if self.failed:
            tail = "".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
            session.error(f"{self.name}: installing failed ({self.failed}, {free_space(self.where.parent)} free); "
                          f"the end of {self.log}:\n{tail}")
        if self.name == session.name:  # not the suite's environment again, where compat and heavy wait for it
            how = " in the background" if self.background else ""
            _INSTALLED[session.name] = f"{self.seconds:.0f} s{how}"
            session.log(f"{self.name}: installed in {self.seconds:.0f} s{how}")


def pip(python: Path, *args: str) -> list[str]:
    """The command that runs ``pip install ARGS`` with ``python``'s pip."""
    return [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]


_BUILT: dict[str, object] = {}  # what this nox run made once: the wheel, and each session's Install


def wheel(session: nox.Session) -> str:
    """Build the wheel from this checkout once per nox run (into the run's cache folder) and return its path."""
    if "wheel" not in _BUILT:
        dist = session.cache_dir / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        session.run_install(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT),
                            external=True, silent=True)
        (_BUILT["wheel"],) = map(str, dist.glob("ultralytics_triplet-*.whl"))
    return _BUILT["wheel"]


def requirements(session: nox.Session, names: list[str]) -> list[str]:
    """The pip requirements ``names`` with ``{wheel}`` filled in."""
    return [name.replace("{wheel}", wheel(session)) for name in names]


def envdir(session: nox.Session) -> Path:
    """The folder of this nox run's environments (``--envdir``)."""
    return session.env_dir.parent


def suite_env(session: nox.Session) -> Path:
    """The suite's environment (compat and heavy share it): a virtual environment of the interpreter that runs nox with
    the wheel and its ``test`` extra. Its interpreter's path."""
    location = envdir(session) / "suite-env"
    if "suite" not in _BUILT:
        shutil.rmtree(location, ignore_errors=True)
        _BUILT["suite"] = Install("suite", location, [
            [sys.executable, "-m", "virtualenv", "-q", str(location)],
            pip(location / "bin" / "python", *requirements(session, SUITE)),
        ])
    _BUILT["suite"].run(session)
    return location / "bin" / "python"


def heavy_install(session: nox.Session) -> Install:
    """The heavy tools, installed into the suite's environment (after the suite and compat tested there)."""
    if "heavy" not in _BUILT:
        python = suite_env(session)
        _BUILT["heavy"] = Install("heavy", python.parents[1], [pip(python, *requirements(session, HEAVY))])
    return _BUILT["heavy"]


def unit_install(session: nox.Session, version: str) -> Install:
    """A fresh virtual environment of Python ``version`` with the wheel and what the unit tests need."""
    name = f"unit-{version}"
    if name not in _BUILT:
        location = envdir(session) / f"{name}-env"
        shutil.rmtree(location, ignore_errors=True)
        newest_torch = version == NEWEST_PY and NEWEST_TORCH
        _BUILT[name] = Install(name, location, [
            [sys.executable, "-m", "virtualenv", "-q", "-p", str(UNIT_PYTHONS[version]), str(location)],
            pip(location / "bin" / "python", *requirements(session, UNIT)),
        ], env={"PIP_CONSTRAINT": "/dev/null"} if newest_torch else None)
    return _BUILT[name]


# ------------------------------------------------------------------------------------------------ selection


def narrowed(own: str, posargs: list[str]) -> tuple[str, list[str]]:
    """The marker expression of a session that selects ``own``, narrowed by a ``-m`` among ``posargs``; the rest."""
    mark, rest, args = "", [], iter(posargs)
    for arg in args:
        if arg == "-m":
            mark = next(args, "")
        elif arg.startswith("-m") and not arg.startswith("-m="):
            mark = arg[2:]
        else:
            rest.append(arg)
    return (f"({mark}) and ({own})" if mark else own), rest


# What each session selects: its marker expression and the paths it collects from.
SELECTS = {
    "suite": ("not heavy", []),
    "compat": ("compat and not newest_only and not heavy", []),
    "heavy": ("heavy", ["integration/test_export.py"]),
    "unit": ("not heavy", ["unit"]),
}


def pytest(session: nox.Session, python: Path | str, selects: str, env: dict[str, str]) -> None:
    """Run pytest from tests/ (so the installed package is imported, not the checkout) on the session's selection."""
    own, paths = SELECTS[selects]
    marks, rest = narrowed(own, session.posargs)
    with session.chdir(ROOT / "tests"):
        session.run(str(python), "-m", "pytest", "-p", "no:cacheprovider", "-ra", "--durations=5", "-m", marks, *paths,
                    *rest, external=True, env=env, success_codes=[0, 5] if session.posargs else [0])


def selects_nothing(session: nox.Session, selects: str) -> bool:
    """Whether a narrowed run selects none of a session's tests, collected in the suite's environment where this run
    has built it (False where the run is not narrowed or has no such environment)."""
    suite = _BUILT.get("suite")
    if not session.posargs or suite is None or suite.thread is None or suite.thread.is_alive() or suite.failed:
        return False
    own, paths = SELECTS[selects]
    marks, rest = narrowed(own, session.posargs)
    cmd = [str(suite.where / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "-m",
           marks, *paths, *rest]
    return subprocess.run(cmd, cwd=ROOT / "tests", capture_output=True, env={**os.environ, **TEST_ENV}).returncode == 5


def prebuild_alongside(session: nox.Session) -> None:
    """With TEST_PREBUILD=1, start the installs of the session ALONGSIDE names in the background (unless the run's
    arguments select none of its tests, or its Python is missing)."""
    later = ALONGSIDE.get(session.name)
    if not PREBUILD or later is None:
        return
    if later == "heavy":
        if not selects_nothing(session, "heavy"):
            heavy_install(session).start(session, background=True)
    else:
        version = later[len("unit-"):]
        others = [v for v in UNIT_PYTHONS if v != version and (envdir(session) / f"unit-{v}-env").exists()]
        if UNIT_PYTHONS.get(version) and not others and not selects_nothing(session, "unit"):
            unit_install(session, version).start(session, background=True)


# ------------------------------------------------------------------------------------------------ sessions, in order

def find_python(version: str) -> str | None:
    """An interpreter for Python ``version`` (``"3.9"``) that runs: ``python3.9`` on PATH, else the newest patch release
    under pyenv's versions folder (where pyenv and setup-python-like tool caches put them), else /usr/local/bin or
    /usr/bin. None if there is none. (pyenv's shims are on PATH but refuse a version pyenv has not selected.)"""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    patch = re.compile(rf"{re.escape(version)}\.(\d+)$")
    under_pyenv = sorted((p for p in (root / "versions").glob(f"{version}.*") if patch.match(p.name)),
                         key=lambda p: int(patch.match(p.name)[1]), reverse=True)
    candidates = [shutil.which(f"python{version}"), *(p / "bin" / f"python{version}" for p in under_pyenv),
                  f"/usr/local/bin/python{version}", f"/usr/bin/python{version}"]
    for candidate in filter(None, candidates):
        try:
            if subprocess.run([str(candidate), "-c", "import sys"], capture_output=True, timeout=60).returncode == 0:
                return str(candidate)
        except (OSError, subprocess.TimeoutExpired):
            continue
    return None


UNIT_PYTHONS = {version: find_python(version) for version in dict.fromkeys((OLDEST_PY, NEWEST_PY))}



@nox.session(python=None)
@step
def lint(session: nox.Session) -> None:
    """ruff on the checkout, and mkdocs build --strict of the docs (a broken link fails)."""
    session.install(*LINT)
    tested(session, "python", {})
    session.run("ruff", "check", "--no-cache", str(ROOT))
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--quiet", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir",
                str(site))


def unit_session(version: str):
    """The session that runs the unit tests under Python ``version``, in an environment removed after its tests."""

    def unit(session: nox.Session) -> None:
        if UNIT_PYTHONS.get(version) is None:
            skip(session, f"no Python {version} found (python{version} on PATH, pyenv's versions, /usr/bin)")
        if selects_nothing(session, "unit"):
            skip(session, "the arguments select none of its tests (its environment was not built)")
        install = unit_install(session, version)
        try:
            install.run(session)
            python = install.where / "bin" / "python"
            env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
            env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, python, env)
            if install.env:
                _TESTED[session.name] += " (the newest torch on the index: pip's constraints set aside)"
            prebuild_alongside(session)
            pytest(session, python, "unit", env)
        finally:
            install.thread.join()
            remove_in_background(install.where)  # a torch install: at most two on disk at once

    unit.__doc__ = f"The unit tests under Python {version}" + (
        ", with the newest torch on the index." if version == NEWEST_PY and NEWEST_TORCH else ".")
    return nox.session(name=f"unit-{version}", python=False)(step(unit))


@nox.session(python=False)
@step
def suite(session: nox.Session) -> None:
    """The whole suite but the heavy exports, against the newest ultralytics pip finds."""
    python = suite_env(session)
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
    env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, python, env)
    prebuild_alongside(session)
    pytest(session, python, "suite", env)


unit_oldest = unit_session(OLDEST_PY)


@nox.session(python=False)
@step
def compat(session: nox.Session) -> None:
    """The tests marked compat, against the oldest supported ultralytics, in the suite's environment."""
    python = suite_env(session)
    target = session.env_dir / f"ultralytics-{OLDEST_ULTRALYTICS}"
    shutil.rmtree(target, ignore_errors=True)
    Install("compat", target, [pip(python, "--no-deps", "--target", str(target), *COMPAT_ULTRALYTICS),
                               pip(python, *COMPAT)]).run(session)
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session), "PYTHONPATH": str(target),
           "ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS": OLDEST_ULTRALYTICS}
    tested(session, python, env)
    # That release's Ray Tune callback calls a Ray function current Ray releases lack, which fails every training once
    # ray[tune] is installed: turn the callback off in this session's settings, as a user would.
    session.run(str(python.parent / "yolo"), "settings", "raytune=False", external=True, silent=True, env=env)
    prebuild_alongside(session)
    pytest(session, python, "compat", env)


if NEWEST_PY != OLDEST_PY:
    unit_newest = unit_session(NEWEST_PY)


@nox.session(python=False)
@step
def heavy(session: nox.Session) -> None:
    """The heavy export tests (PaddlePaddle, ExecuTorch, TensorFlow), in the suite's environment with test-heavy."""
    if "heavy" not in _BUILT and selects_nothing(session, "heavy"):
        skip(session, "the arguments select none of its tests (its tools were not installed)")
    heavy_install(session).run(session)
    python = suite_env(session)
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
    env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, python, env)
    pytest(session, python, "heavy", env)
