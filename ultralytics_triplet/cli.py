"""The ``ultralytics-triplet`` command: parses arguments, calls one library function, prints, exits.

    ultralytics-triplet insert yolov8n.yaml --after 4 6 8 -o yolov8n-ta.yaml
    ultralytics-triplet transfer yolov5n.pt yolov5n-triplet.yaml -o yolov5n-triplet.pt
    ultralytics-triplet compare yolov5n.yaml yolov5n-triplet.yaml --imgsz 320 -o compare.png
    ultralytics-triplet visualize best.pt image.jpg -o gates.png
    ultralytics-triplet study --data data.yaml --model yolo11n.yaml --seeds 3 --epochs 50 --out study
    ultralytics-triplet plugins [--json]

Usage errors (argparse's and ours: a file that exists, a bad index, an unreadable checkpoint...) print one
``ultralytics-triplet: error: ...`` line to stderr and exit with status 2 without writing anything. Library errors
name the Python parameter (``out``) and carry it, and what to do about the error, as parts of the exception
(``_checks.fail``); this module says them in its own words (``--out``, ``pass --force``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
import warnings
from pathlib import Path

from . import _compat, _env
from ._checks import check_checkpoint, check_output_file
from ._files import atomic_write
from ._text import PROG, one_line
from ._version import __version__
from .placements import NAMES, cache_dir
from .study.options import AFTER, EACH_BACKBONE, MODULE, RUNTIME, RUNTIMES, SCALE_UP, StudyOptions

# The modules a command runs (they import torch and ultralytics) are imported inside that command's function, so
# `--help` and the other commands stay fast.

__all__ = ("build_parser", "main")


class UsageError(ValueError):
    """A user error the CLI reports on one line with exit status 2."""


# --------------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------------


def _logger():
    """ultralytics' LOGGER (imported late so ``--help`` stays fast)."""
    from ultralytics.utils import LOGGER  # lazy: see the note on imports at the top

    return LOGGER


def _literal(text: str):
    """``ast.literal_eval`` when ``text`` is a Python literal (``1024``, ``True``, ``[1, 2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _check_output(path: str | Path, force: bool, suffixes: tuple[str, ...]) -> Path:
    """Validate an output path before any work: suffix, not a directory, and no overwrite without ``--force``."""
    return check_output_file("output", path, suffixes, force=force)


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Pass Python warnings raised by our functions on to ultralytics' logger."""
    for w in caught:
        _logger().warning(f"{PROG}: {w.message}")


# --------------------------------------------------------------------------------------------------------------------
# insert
# --------------------------------------------------------------------------------------------------------------------


def cmd_insert(args: argparse.Namespace) -> int:
    """Insert rows into a model YAML and write the result."""
    from .loading import check_model_dict  # lazy: see the note on imports at the top
    from .surgery import insert_layers_with_rows, write_yaml

    out = _check_output(args.output, args.force, (".yaml", ".yml"))
    module_args = [_literal(a) for a in args.args]
    d, rows = insert_layers_with_rows(args.model, args.after, module=args.module, args=module_args)
    check_model_dict(d, args.model)
    header = (
        f"Made by: {PROG} insert {Path(args.model).name} --after {' '.join(map(str, args.after))} --module "
        f"{args.module}{' --args ' + ' '.join(args.args) if args.args else ''}\n"
        "New rows carry the comment 'inserted by ultralytics-triplet'; later 'from' indices are re-wired."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_yaml(d, out, rows, force=args.force, header=header)
    _log_warnings(caught)
    _logger().info(
        f"{PROG}: inserted {args.module}{module_args or ''} after layer{'s' * (len(args.after) > 1)} "
        f"{', '.join(map(str, sorted(args.after)))} of {args.model} (new row{'s' * (len(rows) > 1)} "
        f"{', '.join(map(str, rows))}); wrote {out}"
    )
    return 0


# --------------------------------------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------------------------------------


def cmd_transfer(args: argparse.Namespace) -> int:
    """Build MODEL.yaml, carry BASE.pt's weights into it and save a checkpoint ultralytics trains from."""
    from .weights import MostlyUnusedError, save_transferred  # lazy: see the note on imports at the top

    out = _check_output(args.output, args.force, (".pt",))
    base = check_checkpoint("base", args.base)  # checked here so a missing file is never looked up online by a name
    if out.exists() and out.resolve() == base.resolve():
        raise UsageError("output must differ from the base checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            report, model = atomic_write(out, lambda tmp: save_transferred(
                base, args.model, tmp, strict=not args.force, pass_through=not args.paper_init))
        except MostlyUnusedError as e:
            raise UsageError(f"{one_line(e)}; pass --force to write it anyway") from None
    _log_warnings(caught)
    log = _logger()
    log.info(f"{PROG}: {report}")
    if report.pass_through:
        rows, n = ", ".join(map(str, report.pass_through)), len(report.pass_through)
        log.info(f"{PROG}: layer{'s' * (n > 1)} {rows} start{'s' * (n == 1)} as a near pass-through (0.982·x), so the "
                 f"model starts close to what {base.name} computed (--paper-init keeps the paper's initialisation)")
    foreign = [i for i in report.empty_layers if i not in report.pass_through]
    if foreign:
        log.warning(
            f"{PROG}: layer{'s' * (len(foreign) > 1)} {', '.join(map(str, foreign))} of {args.model} received no "
            f"weights and keep their initial values: is {base.name} the model {args.model} was made from?"
        )
    log.info(
        f"{PROG}: wrote {out} ({args.model} with {base.name}'s weights, nc={model.yaml.get('nc')}). Train it with:\n"
        f"  yolo train model={out} data=your_data.yaml"
    )
    return 0


# --------------------------------------------------------------------------------------------------------------------
# compare / visualize
# --------------------------------------------------------------------------------------------------------------------


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two models and print the table (and write the chart)."""
    from .compare import compare_models, format_table, plot_comparison  # lazy: see the note on imports at the top

    out = _check_output(args.output, args.force, (".png", ".jpg", ".pdf", ".svg")) if args.output else None
    rows = compare_models(args.a, args.b, imgsz=args.imgsz, runs=args.runs, threads=args.threads)
    log = _logger()
    log.info(f"\n{format_table(rows)}")
    if out:
        atomic_write(out, lambda tmp: plot_comparison(rows, tmp))
        log.info(f"{PROG}: chart saved to {out}")
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    """Draw every TripletAttention layer's gates for one image."""
    from .visualize import OUTPUT_SUFFIXES, visualize  # lazy: see the note on imports at the top

    out = _check_output(args.output, args.force, OUTPUT_SUFFIXES)
    if not Path(args.image).is_file():
        raise FileNotFoundError(f"image '{args.image}' not found (or not a file)")
    atomic_write(out, lambda tmp: visualize(args.model, args.image, tmp, imgsz=args.imgsz))
    _logger().info(f"{PROG}: gates of {args.model} for {args.image} saved to {out}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# study
# --------------------------------------------------------------------------------------------------------------------


def cmd_study(args: argparse.Namespace) -> int:
    """Train the plain model, its references and each placement of each module over seeds; print the table."""
    from .study import conduct  # lazy: see the note on imports at the top

    if args.address and args.backend != "ray":
        raise UsageError("--address is for --backend ray")
    options = StudyOptions(**{f.name: getattr(args, f.name) for f in dataclasses.fields(StudyOptions)
                              if f.name != "train_args"},
                           train_args={} if args.workers is None else {"workers": args.workers})
    try:
        result = conduct(options)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; run the same command again to resume the study in {args.out}\n")
        return 130
    except RuntimeError as e:  # a training that failed (on Ray), or an export: the finished runs are recorded
        sys.stderr.write(f"{PROG}: {_in_words(e)}\n")
        return 1
    log = _logger()
    log.info(f"\n{result.table}\n")
    log.info(
        f"{PROG}: {result.trained} run{'s' * (result.trained != 1)} trained, {result.resumed} resumed, "
        f"{result.reused} reused; results in {result.out.resolve()}:\n"
        f"  study.txt  the table above\n"
        f"  study.csv  one row per run (row, role, module, seed, metrics, p-values, verdict, how far from detectable, "
        f"latency with its interval, worth it, times, paths)\n"
        f"  study.png  each row's paired difference to the plain model (mean, 95% CI, each seed), the values, and "
        f"accuracy against latency with the front\n"
        f"  runs/      the ultralytics training runs, each with its train.log"
    )
    return 0


# --------------------------------------------------------------------------------------------------------------------
# plugins
# --------------------------------------------------------------------------------------------------------------------


def host_facts() -> dict:
    """What this process's ultralytics sees of this package: version, patch state, modules, directories."""
    from . import plugins  # lazy: see the note on imports at the top

    tasks = _compat.tasks()  # the start-up hook patches it here, unless disabled
    registry = plugins.registry()
    version, supported = _compat.ultralytics_version(), _compat.supported_range()
    patched = _compat.is_patched(tasks)
    return {
        "version": __version__,
        "ultralytics": {"version": version, "supported": supported,
                        "ok": not _compat.is_older_than_supported(version) and not _compat.missing_internals(tasks)},
        "patched": patched,
        "disabled": _env.disabled(),
        "plugins": [name for name, _ in plugins.get_plugin_manager().list_name_plugin()],
        "modules": [{"name": n, "class": f"{c.__module__}.{c.__qualname__}", "plugin": registry.owners[n],
                     "takes_channels": n in registry.channel_modules} for n, c in registry.modules.items()],
        "model_dirs": [{"path": str(d), "plugin": registry.dir_owners.get(d, "?")} for d in registry.model_dirs],
        "generated_configs": str(cache_dir()),
    }


def cmd_plugins(args: argparse.Namespace) -> int:
    """Print what ultralytics sees of this package, one line per fact (or as JSON)."""
    facts = host_facts()
    if args.json:
        print(json.dumps(facts, indent=2))
        return 0
    u = facts["ultralytics"]
    lines = [f"ultralytics-triplet {facts['version']}",
             f"ultralytics {u['version']}: {'supported' if u['ok'] else 'NOT supported'} (this package supports "
             f"ultralytics{u['supported']})"]
    if facts["patched"]:
        lines.append("ultralytics patched: yes")
    elif facts["disabled"]:
        lines.append("ultralytics patched: no (disabled by ULTRALYTICS_TRIPLET_DISABLE)")
    else:
        lines.append("ultralytics patched: no (see the warning above)")
    lines += [f"plugin: {name}" for name in facts["plugins"]]
    lines += [f"module: {m['name']} ({m['class']}) from plugin {m['plugin']}"
              + (", built with its input channel count" if m["takes_channels"] else "") for m in facts["modules"]]
    lines += [f"model directory: {d['path']} from plugin {d['plugin']}" for d in facts["model_dirs"]]
    lines.append(f"generated configs: {facts['generated_configs']}")
    print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line (no usage dump) and exit with status 2."""

    def error(self, message: str):
        """Print ``<prog>: error: <message>`` and exit 2."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the ``ultralytics-triplet`` argument parser with its six subcommands."""
    parser = _Parser(
        prog=PROG,
        description="Triplet Attention for ultralytics YOLO: edit model YAMLs, transfer weights, compare models, "
        "visualize attention gates, study whether attention helps on your data, and show what ultralytics sees.",
        epilog="Each command has its own --help. Nothing existing is overwritten without --force.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("insert", help="insert a module (TripletAttention) after chosen layers of a model YAML",
                       description="Insert a [-1, 1, MODULE, ARGS] row after each listed layer of a model YAML, "
                       "re-wiring later 'from' indices, and write the new YAML (inserted rows are commented).")
    p.add_argument("model", metavar="MODEL.yaml", help="model YAML path or name ultralytics knows, e.g. yolov8n.yaml")
    p.add_argument("--after", type=int, nargs="+", required=True, metavar="N",
                   help="layer indices (backbone and head counted together) to insert after")
    p.add_argument("--module", default="TripletAttention", help="module name of the new rows (default: %(default)s)")
    p.add_argument("--args", nargs="*", default=[], metavar="ARG",
                   help="arguments of the new rows, each a Python literal when possible (e.g. --args 1024 True)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.yaml", help="where to write the new YAML")
    p.add_argument("--force", action="store_true", help="overwrite OUT.yaml if it exists")
    p.set_defaults(func=cmd_insert)

    p = sub.add_parser("transfer", help="build a model YAML and fill it with a checkpoint's weights",
                       description="Build MODEL.yaml, copy every tensor of BASE.pt into it by aligning the layer "
                       "lists (inserted layers keep their initial values) and save an ultralytics checkpoint that "
                       "'yolo train model=OUT.pt' trains from.")
    p.add_argument("base", metavar="BASE.pt", help="ultralytics checkpoint (local file; nothing is downloaded)")
    p.add_argument("model", metavar="MODEL.yaml", help="target model YAML path or name, e.g. yolov5n-triplet.yaml")
    p.add_argument("-o", "--output", required=True, metavar="OUT.pt", help="where to write the new checkpoint")
    p.add_argument("--force", action="store_true",
                   help="overwrite OUT.pt if it exists, and write it even when most of BASE.pt finds no place")
    p.add_argument("--paper-init", action="store_true",
                   help="keep the paper's initialisation of inserted layers instead of starting them as "
                   "pass-throughs that preserve BASE.pt's function")
    p.set_defaults(func=cmd_transfer, flags={"base": "BASE.pt"})

    p = sub.add_parser("compare", help="layers, parameters, GFLOPs and CPU latency of two models",
                       description="Compare two models (YAML names/paths or .pt files) side by side: layers, "
                       "parameters, GFLOPs and median CPU latency (A and B timed interleaved in one process).")
    p.add_argument("a", metavar="A", help="first model: .yaml or .pt")
    p.add_argument("b", metavar="B", help="second model: .yaml or .pt")
    p.add_argument("--imgsz", type=int, default=640, help="square input size (default: %(default)s)")
    p.add_argument("--runs", type=int, default=20, help="timed forward passes per model (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads while timing (default: %(default)s)")
    p.add_argument("-o", "--output", metavar="CHART.png", help="also write a bar chart")
    p.add_argument("--force", action="store_true", help="overwrite the chart if it exists")
    p.set_defaults(func=cmd_compare, flags={"a": "A", "b": "B"})

    p = sub.add_parser("visualize", help="picture of every TripletAttention layer's gates for one image",
                       description="Run a model on one (letterboxed) image and draw, for every TripletAttention "
                       "layer, its spatial H-W gate over the image and its C-W and H-C gates as maps.")
    p.add_argument("model", metavar="MODEL", help="model checkpoint (.pt) or YAML (untrained: initial gates)")
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="where to write the picture")
    p.add_argument("--imgsz", type=int, default=640, help="letterbox size, a multiple of 32 (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite OUT.png if it exists")
    p.set_defaults(func=cmd_visualize, flags={"model": "MODEL", "out": "--output"})

    p = sub.add_parser("study", help="is triplet attention worth it on my data? rows x seeds, paired, deployed cost",
                       description="Train the plain model, its references and each placement of each module with the "
                       "same seeds, data, budget and hyper-parameters; print mean ± std per row, the paired "
                       "difference to the plain model with a 95% t-interval, a verdict (Holm-adjusted over the rows "
                       "when there are several; where it finds no difference, how far from detectable), parameters, "
                       "GFLOPs, latency in the runtime the model ships in, and whether the row is worth it: not where "
                       "the plain model or a row on the front is detectably better on one count and not worse on the "
                       "other, or ties with it on both and is cheaper. Writes study.txt, study.csv and study.png (the "
                       "paired differences, and accuracy against latency) in --out. One progress bar "
                       "shows the runs; each run's log goes to runs/RUN/train.log. Resumable: the same command again "
                       "reuses finished runs, continues an interrupted one and trains only what is missing.")
    p.add_argument("--data", required=True, metavar="DATA.yaml", help="dataset YAML (a local file)")
    p.add_argument("--model", default=StudyOptions.model, metavar="MODEL.yaml",
                   help="the plain model; named placement P is STEM-P.yaml (default: %(default)s)")
    p.add_argument("--placements", nargs="+", default=list(StudyOptions.placements), metavar="P",
                   help=f"placements to compare with the plain model: a named one ({', '.join(NAMES)}); "
                   f"{AFTER}I[,J...], the module after layers I, J, ... of MODEL (backbone and head counted "
                   f"together, as 'insert' counts), trained as STEM+TA@I,J.yaml; or {EACH_BACKBONE} (one {AFTER}I "
                   "per backbone layer); default: the named ones")
    p.add_argument("--modules", nargs="+", default=list(StudyOptions.modules), metavar="M",
                   help="modules each placement is built with: any registered module (see 'plugins'), e.g. "
                   f"{MODULE} CBAM; another than {MODULE} is named STEM-M.yaml, STEM-M-neck.yaml, STEM+M@I.yaml "
                   f"(default: {MODULE})")
    p.add_argument("--references", nargs="+", default=list(StudyOptions.references), metavar="MODEL",
                   help=f"plain models trained alike and compared like the variants: a config, or {SCALE_UP}, MODEL "
                   "at its next scale letter (yolov5n.yaml: yolov5s.yaml)")
    p.add_argument("--seeds", type=int, default=StudyOptions.seeds, help="seeds 0..N-1, every row once per seed; >= 2 "
                   "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=StudyOptions.epochs, help="epochs per run (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=StudyOptions.imgsz, help="image size (default: %(default)s)")
    p.add_argument("--batch", type=int, default=StudyOptions.batch,
                   help="batch size, -1 for auto (default: %(default)s)")
    p.add_argument("--pretrained", metavar="BASE.pt",
                   help="start every row from these weights (layer-aligned, attention as a pass-through)")
    p.add_argument("--device", help="ultralytics device: 0, 0,1 (DDP), cpu (default: ultralytics chooses)")
    p.add_argument("--workers", type=int, help="dataloader workers per run (default: ultralytics' default)")
    p.add_argument("--out", default=StudyOptions.out, help="study directory: new, or holding this same study "
                   "(default: %(default)s)")
    p.add_argument("--backend", choices=("local", "ray"), default=StudyOptions.backend,
                   help="local: one run after another here; ray: each run a Ray task (default: %(default)s)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    p.add_argument("--latency", choices=RUNTIMES, default=StudyOptions.latency,
                   help="where the latency column is measured: torch, the fused PyTorch model; "
                   + "; ".join(f"{r.name}, {r.label} on the model ultralytics' export writes (extra: "
                               f"ultralytics-triplet[{r.extra}])" for r in RUNTIME.values() if r.extra)
                   + " (default: %(default)s)")
    p.add_argument("--latency-runs", type=int, default=StudyOptions.latency_runs,
                   help="interleaved rounds of the latency measurement (default: %(default)s)")
    p.add_argument("--detect", type=float, default=StudyOptions.detect, metavar="DIFF",
                   help="a difference of the verdict's metric (mAP50-95 for detection): where a verdict finds no "
                   "difference, the footnote says about how many seeds would detect one this large, with 80%% power "
                   "(default: %(default)s)")
    p.add_argument("--verbose", action="store_true",
                   help="stream every run's full ultralytics log instead of the progress bar")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("plugins", help="what ultralytics sees of this package: modules, plugins, patch state",
                       description="Print, one line per fact, this package's version, the ultralytics version "
                       "against the supported range, whether ultralytics is patched (or disabled by "
                       "ULTRALYTICS_TRIPLET_DISABLE), each plugin, each registered module with the plugin that owns "
                       "it, the model directories, and where generated configs are written.")
    p.add_argument("--json", action="store_true", help="print the same facts as JSON")
    p.set_defaults(func=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help/--version (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return args.func(args) or 0
    except _compat.NotRegisteredError:
        sys.stderr.write(f"{PROG}: error: ultralytics is not patched: this command needs it (unset "
                         "ULTRALYTICS_TRIPLET_DISABLE)\n")
        return 2
    except (OSError, ValueError, ImportError) as e:  # OSError: exists, not found, permission
        sys.stderr.write(f"{PROG}: error: {_in_words(e, vars(args).get('flags', {}))}\n")
        return 2


def _in_words(e: BaseException, flags: dict[str, str] | None = None) -> str:
    """A library error as this command says it, on one line: from its parts (``_checks.fail``) where it has them, the
    parameter as this command's flag (``--out``, or ``flags[param]``) and the remedy in the command's words; else its
    message."""
    if not hasattr(e, "detail"):
        return one_line(e)
    param, remedy = e.param, e.remedy
    flag = (flags or {}).get(param, "--" + param.replace("_", "-")) if param else ""
    text = "; ".join(t for t in (f"{flag} {e.detail}" if flag else e.detail, remedy and remedy.command) if t)
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
