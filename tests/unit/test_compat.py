"""``ultralytics_triplet._compat``: the supported range, declared once in pyproject.toml and read back from the
installed metadata, and each ultralytics internal the package relies on, pinned by a test of its own.

The names ``integration.install`` wraps are checked at install time (``_compat.check``); the tests below pin the
behaviours that cannot be checked by name. A failure here names the internal that moved.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import re
import types
from pathlib import Path

import pytest
import torch
from torch import nn
from ultralytics.nn.tasks import DetectionModel

from ultralytics_triplet import _compat, insert_layers
from ultralytics_triplet.nn import GateBatchNorm2d

pytestmark = pytest.mark.compat


def declared_range() -> str:
    """The ultralytics requirement written in this checkout's pyproject.toml."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("no pyproject.toml beside the tests")
    return re.search(r'"ultralytics([<>=!~][^";]*)"', pyproject.read_text())[1]


def test_declared_range_has_a_lower_bound_and_no_upper_bound():
    declared = declared_range()
    assert re.fullmatch(r">=\d+\.\d+\.\d+", declared), declared


@pytest.mark.skipif(os.environ.get("ULTRALYTICS_TRIPLET_TEST_WHEEL") != "1", reason="only under scripts/test.sh")
def test_runtime_reads_the_range_from_the_installed_metadata():
    from ultralytics_triplet._compat import oldest_supported, supported_range

    assert supported_range() == declared_range() == f">={oldest_supported()}"


def test_the_names_the_patch_wraps_are_all_there():
    assert _compat.missing_internals(_compat.tasks()) == []


def test_the_exporter_call_takes_the_model_and_exports_by_its_format_and_dynamic_arguments():
    import ultralytics.engine.exporter as exporter

    call = _compat.exporter_call(exporter)
    assert call is not None and "model" in inspect.signature(_compat.original(call)).parameters
    assert _compat.export_target(exporter.Exporter(overrides={"format": "OpenVINO", "dynamic": True})) == (
        "openvino", True)
    assert _compat.exporter_call(object()) is None  # a release without it: the patch leaves the exporter alone


def test_base_model_load_logs_the_transferred_line_the_weight_transfer_annotates():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("ultralytics")
    logger.addHandler(handler)
    try:
        model = DetectionModel("yolov5n.yaml", verbose=False)
        _compat.original_load()(model, DetectionModel("yolov5n.yaml", verbose=False), verbose=True)
    finally:
        logger.removeHandler(handler)
    assert any(isinstance(r.msg, str) and r.msg.startswith(_compat.TRANSFERRED) for r in records)


def test_torch_safe_load_messages_are_shown_without_their_error_mark_and_path(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(Exception) as e:
        _compat.tasks().torch_safe_load(str(bad))
    text = " ".join(str(e.value).split())
    if _compat.version_tuple(_compat.ultralytics_version()) >= (8, 4):  # 8.3 lets the unpickling error through as is
        assert text.startswith(_compat.ERROR_MARK) and str(bad) in text
    stripped = _compat.without_error_mark(text, bad)
    assert _compat.ERROR_MARK not in stripped and str(bad) not in stripped and stripped


def _stem_tests(function) -> set[str]:
    """The string constants a function tests with ``"..." in stem`` or ``"..." in path.stem``."""
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(function).lstrip())):
        if isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In):
            right = node.comparators[0]
            name = right.id if isinstance(right, ast.Name) else getattr(right, "attr", "")
            if name == "stem" and isinstance(node.left, ast.Constant):
                found.add(node.left.value)
        if isinstance(node, ast.GeneratorExp):  # any(k in stem for k in ("sam_", ...))
            for sub in ast.walk(node):
                if isinstance(sub, ast.Tuple) and all(isinstance(e, ast.Constant) for e in sub.elts):
                    found.update(e.value for e in sub.elts)
    return found


def test_other_model_classes_cover_every_name_part_the_cli_and_yolo_route_elsewhere():
    from ultralytics.cfg import entrypoint
    from ultralytics.models.yolo.model import YOLO

    triggers = _stem_tests(entrypoint) | _stem_tests(YOLO.__init__)
    assert "rtdetr" in triggers  # the reader finds them
    assert triggers <= set(_compat.OTHER_MODEL_CLASSES), triggers - set(_compat.OTHER_MODEL_CLASSES)


def test_initialize_weights_resets_only_exact_batchnorm2d_which_the_gates_escape():
    model = DetectionModel(insert_layers("yolov5n.yaml", after=[4]), verbose=False)  # runs initialize_weights
    plain = [m for m in model.modules() if type(m) is nn.BatchNorm2d]
    gates = [m for m in model.modules() if isinstance(m, GateBatchNorm2d)]
    assert plain and gates
    assert {(m.eps, m.momentum) for m in plain} == {(1e-3, 0.03)}
    assert {(m.eps, m.momentum) for m in gates} == {(1e-5, 0.01)}


def test_select_device_reading_of_cuda_visible_devices_is_recognized():
    from ultralytics.utils import torch_utils

    source = inspect.getsource(torch_utils.select_device)
    assert "CUDA_VISIBLE_DEVICES" in source  # the variable is still what select_device works with
    assert _compat.cuda_ids_are_physical() == (_compat.version_tuple(_compat.ultralytics_version()) < (8, 4))


def test_auto_install_switch_is_restored():
    from ultralytics.utils import checks

    before = checks.AUTOINSTALL
    with _compat.no_autoinstall():
        assert checks.AUTOINSTALL is False
    assert checks.AUTOINSTALL == before


def test_checkpoint_model_prefers_the_ema():
    ema, model = nn.Linear(1, 1), nn.Linear(1, 1)
    assert _compat.checkpoint_model({"ema": ema, "model": model}) is ema
    assert _compat.checkpoint_model({"ema": None, "model": model}) is model
    assert _compat.checkpoint_model({"other": torch.zeros(1)}) is None


# -------------------------------------------------------------------------------- the training loader's shuffle


def test_shuffle_follows_seed_says_whether_two_seeds_draw_two_data_orders():
    from helpers import loader_order

    follows = loader_order(0) != loader_order(1)
    assert loader_order(1) == loader_order(1)
    assert _compat.shuffle_follows_seed() == follows
    if _compat.ultralytics_version() == _compat.oldest_supported():  # 8.3.0: SHUFFLE_SEED + RANK, no seed
        assert not follows


def test_shuffle_follows_seed_leaves_torch_random_state_as_it_was():
    _compat.shuffle_follows_seed.cache_clear()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        torch.rand(3)
        state, initial = torch.get_rng_state(), torch.initial_seed()
        _compat.shuffle_follows_seed()
        assert torch.equal(torch.get_rng_state(), state) and torch.initial_seed() == initial


def test_parse_model_reads_a_string_arg_previous_channels_as_the_channel_count_of_the_row_before():
    """What a channel module's row relies on (``register_channel_modules``): parse_model resolves the string
    ``_compat.PREVIOUS_CHANNELS`` to its own local, the output channel count of the row before, scaled."""
    import ultralytics.nn.tasks as tasks

    parse_model = _compat.original(tasks.parse_model)
    for scale, width in (("n", 16), ("l", 64)):
        d = {"nc": 2, "scales": {"n": [0.33, 0.25, 1024], "l": [1.0, 1.0, 1024]}, "scale": scale,
             "backbone": [[-1, 1, "Conv", [64, 3, 2]], [-1, 1, "nn.Conv2d", [_compat.PREVIOUS_CHANNELS, 5, 1]]],
             "head": [[-1, 1, "nn.Identity", []]]}
        layers, _ = parse_model(d, ch=3, verbose=False)
        assert layers[0].conv.out_channels == width and layers[1].in_channels == width


def test_openvino_export_quantizes_through_nncf_quantize_with_an_ignored_scope_when_exports_int8_says_so():
    # integration.py hands nncf.quantize an ignored scope while Exporter.export_openvino runs an INT8 export: the
    # exporter (8.3) or its torch2openvino (8.4) calls nncf.quantize(model=..., ignored_scope=...) when the arguments
    # ask for INT8 in the way _compat.exports_int8 reads them.
    import importlib

    # try_export keeps no __wrapped__: parse the source
    module = inspect.getsource(importlib.import_module(_compat.EXPORTER_MODULE))
    exporter = next(n for n in ast.parse(module).body if isinstance(n, ast.ClassDef) and n.name == "Exporter")
    method = next(n for n in exporter.body if isinstance(n, ast.FunctionDef) and n.name == "export_openvino")
    source = ast.get_source_segment(module, method)
    if "torch2openvino(" in source:
        from ultralytics.utils.export import openvino

        source += inspect.getsource(openvino.torch2openvino)
    assert re.search(r"nncf\.quantize\(\s*model=", source) and "ignored_scope=ignored_scope" in source
    assert "self.args.quantize == 8" in source or "if self.args.int8:" in source
    args = types.SimpleNamespace
    assert _compat.exports_int8(args(quantize=8)) and _compat.exports_int8(args(int8=True))  # 8.4, 8.3
    assert not _compat.exports_int8(args(quantize=16, int8=False)) and not _compat.exports_int8(args(quantize=None))
