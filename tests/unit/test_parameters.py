"""No function of the package takes more than 7 parameters: settings travel as one object (a study's
``StudyOptions``), not by position through layers. The one exception is the public ``run_study``, whose keywords are
its documented API and go straight into a ``StudyOptions``.

Counted: every parameter of every function, method, nested function and lambda defined in the package's modules,
``*args`` and ``**kwargs`` one each; ``self`` and ``cls`` not counted (nor ``ctx``, which torch passes to an autograd
Function's static methods in their place). Not counted: the ``__init__`` that ``dataclasses`` writes for a record
(its fields are keywords of one value, not a function's parameters).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import CodeType

import pytest

import ultralytics_triplet

pytestmark = pytest.mark.newest_only  # this package's own code: nothing of ultralytics

LIMIT = 7
EXEMPT = {"ultralytics_triplet.study.steps.run_study"}
BOUND = ("self", "cls", "ctx")  # the instance, the class, torch's autograd context: not passed by a caller


def modules() -> list:
    """Every module of the package, imported."""
    names = [m.name for m in pkgutil.walk_packages(ultralytics_triplet.__path__, f"{ultralytics_triplet.__name__}.")]
    return [ultralytics_triplet, *(importlib.import_module(name) for name in names)]


def codes(module) -> dict[str, CodeType]:
    """The code of every function the module defines, by qualified name: its functions, its classes' methods
    (static, class and property ones included) and everything defined inside them."""
    found: dict[str, CodeType] = {}
    classes: set[type] = set()

    def add(code: CodeType, name: str) -> None:
        found[name] = code
        for const in code.co_consts:
            if inspect.iscode(const):
                add(const, f"{name}.{const.co_name}")

    def visit(obj, name: str) -> None:
        if inspect.isclass(obj):
            if obj not in classes and obj.__module__ == module.__name__:  # each class once, where it is defined
                classes.add(obj)
                for attr, value in vars(obj).items():
                    visit(value, f"{name}.{attr}")
            return
        for f in (obj, getattr(obj, "__func__", None), getattr(obj, "fget", None), getattr(obj, "fset", None)):
            f = inspect.unwrap(f) if f is not None else None  # a decorated one (contextmanager): the one written here
            if inspect.isfunction(f) and f.__code__.co_filename == module.__file__:  # not code dataclasses wrote
                add(f.__code__, name)

    for attr, value in vars(module).items():
        if getattr(value, "__module__", None) == module.__name__:
            visit(value, f"{module.__name__}.{attr}")
    return found


def parameters(code: CodeType) -> list[str]:
    """The parameters of a function as its caller passes them (``self``, ``cls`` and ``ctx`` left out)."""
    n = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & inspect.CO_VARARGS) + bool(
        code.co_flags & inspect.CO_VARKEYWORDS)
    names = list(code.co_varnames[:n])
    return names[1:] if names and names[0] in BOUND else names


def test_no_function_takes_more_than_seven_parameters_but_run_study():
    everything = {name: code for m in modules() for name, code in codes(m).items()}
    assert "ultralytics_triplet.study.plan.make_plan" in everything  # the walk reaches the study's modules
    assert "ultralytics_triplet.study.console._warnings_to.showwarning" in everything  # and nested functions
    assert parameters(everything["ultralytics_triplet.study.steps.run_study"]) == [
        "data", "model", "placements", "seeds", "epochs", "imgsz", "batch", "pretrained", "device", "out", "backend",
        "address", "latency_runs", "verbose", "modules", "references", "latency", "detect", "train_args"]
    over = {name: len(parameters(code)) for name, code in everything.items()
            if len(parameters(code)) > LIMIT and name not in EXEMPT}
    assert not over, f"functions with more than {LIMIT} parameters: {over}"


def test_the_walk_counts_what_a_caller_passes():
    class Example:
        def method(self, a, *args, b, **kwargs):
            return lambda x, y: x

    code = Example.method.__code__
    assert parameters(code) == ["a", "b", "args", "kwargs"]
    assert parameters(next(c for c in code.co_consts if inspect.iscode(c))) == ["x", "y"]
