"""The README's test command as named nox sessions. ``bash scripts/test.sh`` brings nox into a throw-away environment
and runs every session, in this order; with nox installed, ``nox -s NAME`` runs one from the checkout's root.

- ``lint``: ruff on the checkout, and ``mkdocs build --strict`` of the docs (a broken link fails).
- ``suite``: the whole suite but the heavy exports, against the wheel built from this checkout and installed
  non-editable with its ``test`` extra: the newest ultralytics pip finds, the torch pip resolves for the interpreter
  that runs nox.
- ``compat``: the tests marked ``compat``, against the oldest supported ultralytics (the lower bound of the dependency
  declared in pyproject.toml), installed to a folder on ``PYTHONPATH`` beside the suite's environment.
- ``heavy``: the heavy export tests (PaddlePaddle, ExecuTorch, TensorFlow SavedModel and its TFLite), in the suite's
  environment after its ``test-heavy`` extra, which moves numpy and onnx: so it runs after suite and compat.
- ``unit-3.9``, ``unit-3.13``: the unit tests under the oldest and the newest Python the package declares (its
  classifiers), each in an environment of its own that is removed after its tests. The newest gets the newest torch
  release on the index: pip's configured constraints are set aside there (``NEWEST_TORCH=0`` keeps them). A Python
  this machine lacks is a skipped session, said in one line.

pip installs every environment, so pip's configuration (constraints, indexes) holds as on a user's machine. The suite,
compat and heavy share one environment, and a unit session's is removed before the next one is built, so a run holds
at most two torch installs on disk. Each session names the Python, torch and ultralytics it tested with, in its log
and, when ``TEST_SUMMARY`` names a file, in a line added there (the bootstrap prints them at the end). Every
ultralytics process of a session reads and writes its settings in a throw-away folder (``YOLO_CONFIG_DIR``).

Arguments after ``--`` go to pytest and narrow each session's own selection: ``-m EXPR`` joins the session's marker
expression as ``(EXPR) and (its own)``; ``-k EXPR`` and the rest are passed on. A narrowed session that selects nothing
passes, without installing the heavy tools or another Python's environment for nothing.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

nox.options.reuse_venv = "no"
nox.options.error_on_missing_interpreters = False  # nox turns it on where CI is set; a missing Python is a skip

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
DECLARED_PYTHONS = nox.project.python_versions(PYPROJECT)  # from the classifiers, oldest first
_LOWER_BOUND = re.compile(r"ultralytics\s*>=\s*([\d.]+)")
OLDEST_ULTRALYTICS = next(m[1] for dep in PYPROJECT["project"]["dependencies"] if (m := _LOWER_BOUND.match(dep)))

# Each session's environment, in one place. "{wheel}" is the wheel built from this checkout (installed non-editable).
LINT = PYPROJECT["project"]["optional-dependencies"]["lint"]  # ruff and mkdocs alone, pinned in pyproject.toml
SUITE = ["{wheel}[test]"]  # the suite's environment, which compat and heavy add to
COMPAT_ULTRALYTICS = [f"ultralytics=={OLDEST_ULTRALYTICS}"]  # --no-deps, to a folder put first on PYTHONPATH
COMPAT = ["tqdm", "pandas", "seaborn", "py-cpuinfo", "scipy"]  # what that release needs and the newest does not
HEAVY = ["{wheel}[test-heavy]"]
UNIT = ["{wheel}", "pytest>=7", "onnx", "onnxruntime"]  # onnx: the unit tests that read exported graphs run too
NEWEST_TORCH = os.environ.get("NEWEST_TORCH", "1") == "1"  # the newest Python's environment ignores pip's constraints
TEST_ENV = {"ULTRALYTICS_TRIPLET_TEST_WHEEL": "1", "OMP_NUM_THREADS": "2"}  # what every session's tests see


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
            line = f"{s.name}: {_TESTED.get(s.name, '-')}: {outcome} ({time.monotonic() - start:.0f} s)"
            if os.environ.get("TEST_SUMMARY"):
                with open(os.environ["TEST_SUMMARY"], "a", encoding="utf-8") as f:
                    f.write(line + "\n")

    return session


_TESTED: dict[str, str] = {}  # session name -> "Python X, torch Y, ultralytics Z"
_SKIPPED: dict[str, str] = {}  # session name -> why it was skipped


def skip(session: nox.Session, why: str) -> None:
    """Skip the session with one line that says why."""
    _SKIPPED[session.name] = why
    session.skip(why)


def free_space(path: Path) -> str:
    """Free space on the file system that holds ``path``, e.g. ``"74.2 GB"``."""
    return f"{shutil.disk_usage(path).free / 2**30:.1f} GB"


_BUILT: dict[str, str] = {}  # what this nox run built once: "wheel" and "suite" (its environment's interpreter)


def wheel(session: nox.Session) -> str:
    """Build the wheel from this checkout once per nox run (into the run's cache folder) and return its path."""
    if "wheel" not in _BUILT:
        dist = session.cache_dir / "dist"
        shutil.rmtree(dist, ignore_errors=True)
        session.run_install(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT),
                            external=True, silent=True)
        (found,) = dist.glob("ultralytics_triplet-*.whl")
        _BUILT["wheel"] = str(found)
    return _BUILT["wheel"]


def requirements(session: nox.Session, names: list[str]) -> list[str]:
    """The pip requirements ``names`` with ``{wheel}`` filled in."""
    return [name.format(wheel=wheel(session)) if "{wheel}" in name else name for name in names]


def pip_install(session: nox.Session, python: str, args: list[str], **env: str) -> None:
    """Install ``args`` with ``python``'s pip, saying the free space before, and again if the install fails."""
    where = Path(python).parents[1]
    session.log(f"installing {' '.join(Path(a).name for a in args)} ({free_space(where)} free in {where.parent})")
    try:
        session.run_install(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args,
                            external=True, silent=True, env=env)
    except BaseException:
        session.log(f"the install failed with {free_space(where)} free in {where.parent}")
        raise


def tested(session: nox.Session, python: str, env: dict[str, str]) -> str:
    """Say which Python, torch and ultralytics the session tests with; return the ultralytics version."""
    line = session.run(python, str(ROOT / "scripts" / "versions.py"), external=True, silent=True, env=env).strip()
    _TESTED[session.name] = line.splitlines()[-1]
    session.log(f"{session.name}: {_TESTED[session.name]}")
    return _TESTED[session.name].rsplit("ultralytics ", 1)[-1]


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


def pytest(session: nox.Session, python: str, own: str, paths: list[str], env: dict[str, str]) -> None:
    """Run pytest from tests/ (so the installed package is imported, not the checkout) on the session's selection."""
    marks, rest = narrowed(own, session.posargs)
    with session.chdir(ROOT / "tests"):
        session.run(python, "-m", "pytest", "-p", "no:cacheprovider", "-ra", "--durations=5", "-m", marks, *paths,
                    *rest, external=True, env=env, success_codes=[0, 5] if session.posargs else [0])


def selects_nothing(python: str, own: str, paths: list[str], posargs: list[str]) -> bool:
    """Whether a narrowed run selects no test of a session, collected with ``python``'s pytest."""
    if not posargs or not Path(python).exists():
        return False
    marks, rest = narrowed(own, posargs)
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", "-m", marks, *paths, *rest]
    return subprocess.run(cmd, cwd=ROOT / "tests", capture_output=True).returncode == 5


def settings_dir(session: nox.Session) -> str:
    """A throw-away ultralytics settings folder for the session (its tmp folder is removed with the environment)."""
    path = Path(session.create_tmp()) / "ultralytics-settings"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def suite_python(session: nox.Session) -> str:
    """The interpreter of the suite's environment, which compat and heavy share; the first of them in a nox run builds
    it: a fresh virtual environment with the wheel and its ``test`` extra."""
    if "suite" not in _BUILT:
        location = session.env_dir.parent / "suite-env"
        shutil.rmtree(location, ignore_errors=True)
        session.run(sys.executable, "-m", "virtualenv", "-q", str(location), external=True)
        python = str(location / "bin" / "python")
        pip_install(session, python, requirements(session, SUITE))
        _BUILT["suite"] = python
    return _BUILT["suite"]


@nox.session(python=None)
@step
def lint(session: nox.Session) -> None:
    """ruff on the checkout, and mkdocs build --strict of the docs (a broken link fails)."""
    session.install(*LINT)
    session.run("ruff", "check", "--no-cache", str(ROOT))
    site = Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--quiet", "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir",
                str(site))


@nox.session(python=False)
@step
def suite(session: nox.Session) -> None:
    """The whole suite but the heavy exports, against the newest ultralytics pip finds."""
    python = suite_python(session)
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
    env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, python, env)
    pytest(session, python, "not heavy", [], env)


@nox.session(python=False)
@step
def compat(session: nox.Session) -> None:
    """The tests marked compat, against the oldest supported ultralytics, in the suite's environment."""
    python = suite_python(session)
    target = session.env_dir / f"ultralytics-{OLDEST_ULTRALYTICS}"
    shutil.rmtree(target, ignore_errors=True)
    pip_install(session, python, ["--no-deps", "--target", str(target), *COMPAT_ULTRALYTICS])
    pip_install(session, python, COMPAT)
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session), "PYTHONPATH": str(target),
           "ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS": OLDEST_ULTRALYTICS}
    tested(session, python, env)
    # That release's Ray Tune callback calls a Ray function current Ray releases lack, which fails every training once
    # ray[tune] is installed: turn the callback off in this session's settings, as a user would.
    session.run(str(Path(python).parent / "yolo"), "settings", "raytune=False", external=True, silent=True, env=env)
    pytest(session, python, "compat and not newest_only and not heavy", [], env)


@nox.session(python=False)
@step
def heavy(session: nox.Session) -> None:
    """The heavy export tests (PaddlePaddle, ExecuTorch, TensorFlow), in the suite's environment with test-heavy."""
    paths = ["integration/test_export.py"]
    if selects_nothing(_BUILT.get("suite", ""), "heavy", paths, session.posargs):
        skip(session, "the arguments select none of its tests (its tools were not installed)")
    python = suite_python(session)
    pip_install(session, python, requirements(session, HEAVY))
    env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
    env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, python, env)
    pytest(session, python, "heavy", paths, env)


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


def unit_session(version: str, newest: bool):
    """The session that runs the unit tests under Python ``version`` (``newest``: the newest declared Python)."""
    interpreter = find_python(version)
    newest_torch = newest and NEWEST_TORCH

    def unit(session: nox.Session) -> None:
        if interpreter is None:
            skip(session, f"no Python {version} found (python{version} on PATH, pyenv's versions, /usr/bin)")
        if selects_nothing(_BUILT.get("suite", ""), "not heavy", ["unit"], session.posargs):
            skip(session, "the arguments select none of its tests (its environment was not built)")
        location = Path(session.virtualenv.location)
        try:
            env = {"PIP_CONSTRAINT": "/dev/null"} if newest_torch else {}
            pip_install(session, str(location / "bin" / "python"), requirements(session, UNIT), **env)
            env = {**TEST_ENV, "YOLO_CONFIG_DIR": settings_dir(session)}
            env["ULTRALYTICS_TRIPLET_EXPECT_ULTRALYTICS"] = tested(session, "python", env)
            if newest_torch:
                _TESTED[session.name] += " (the newest torch on the index: pip's constraints set aside)"
            pytest(session, "python", "not heavy", ["unit"], env)
        finally:
            shutil.rmtree(location, ignore_errors=True)  # a torch install: at most two on disk at once

    unit.__doc__ = f"The unit tests under Python {version}" + (
        ", with the newest torch on the index." if newest_torch else ".")
    return nox.session(name=f"unit-{version}", python=interpreter or False, download_python="never")(step(unit))


for _version in dict.fromkeys((DECLARED_PYTHONS[0], DECLARED_PYTHONS[-1])):
    globals()[f"unit_{_version.replace('.', '_')}"] = unit_session(_version, newest=_version == DECLARED_PYTHONS[-1])
