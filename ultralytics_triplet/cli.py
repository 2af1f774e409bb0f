"""The ``ultralytics-triplet`` command: parses arguments, calls one library function, prints, exits.

    ultralytics-triplet insert yolov8n.yaml --after 4 6 8 -o yolov8n-ta.yaml
    ultralytics-triplet transfer yolov5n.pt yolov5n-triplet.yaml -o yolov5n-triplet.pt
    ultralytics-triplet compare yolov5n.yaml yolov5n-triplet.yaml --imgsz 320 -o compare.png
    ultralytics-triplet visualize best.pt image.jpg -o gates.png
    ultralytics-triplet demo --out triplet-demo
    ultralytics-triplet study --data data.yaml --model yolo11n.yaml --seeds 3 --epochs 50 --out study

Usage errors (argparse's and ours: a file that exists, a bad index, an unreadable checkpoint...) print one
``ultralytics-triplet: error: ...`` line to stderr and exit with status 2 without writing anything.
"""

from __future__ import annotations

import argparse
import ast
import sys
import warnings
from pathlib import Path

from ._files import atomic_write
from ._text import PROG, one_line

__all__ = ("build_parser", "main")


class UsageError(ValueError):
    """A user error the CLI reports on one line with exit status 2."""


# --------------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------------


def _logger():
    """ultralytics' LOGGER (imported late so ``--help`` stays fast)."""
    from ultralytics.utils import LOGGER

    return LOGGER


def _literal(text: str):
    """``ast.literal_eval`` when ``text`` is a Python literal (``1024``, ``True``, ``[1, 2]``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _check_output(path: str | Path, force: bool, suffixes: tuple[str, ...], what: str) -> Path:
    """Validate an output path before any work: suffix, not a directory, and no overwrite without ``--force``."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{what} '{path}' must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{what} '{path}' is a directory")
    if path.exists() and not force:
        raise FileExistsError(f"'{path}' already exists; pass --force to overwrite it")
    return path


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Pass Python warnings raised by our functions on to ultralytics' logger."""
    for w in caught:
        _logger().warning(f"{PROG}: {w.message}")


# --------------------------------------------------------------------------------------------------------------------
# insert
# --------------------------------------------------------------------------------------------------------------------


def cmd_insert(args: argparse.Namespace) -> int:
    """Insert rows into a model YAML and write the result."""
    from .loading import check_model_dict
    from .surgery import insert_layers_with_rows, write_yaml

    out = _check_output(args.output, args.force, (".yaml", ".yml"), "output")
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
    from .weights import save_transferred

    out = _check_output(args.output, args.force, (".pt",), "output")
    base = Path(args.base)
    if base.suffix.lower() != ".pt":
        raise UsageError(f"base checkpoint '{base}' must be a .pt file")
    if not base.is_file():  # checked here so a missing file is never looked up online by a name
        raise FileNotFoundError(f"base checkpoint '{base}' not found (or not a file)")
    if out.exists() and out.resolve() == base.resolve():
        raise UsageError("output must differ from the base checkpoint")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, model = atomic_write(out, lambda tmp: save_transferred(base, args.model, tmp, strict=not args.force,
                                                                        pass_through=not args.paper_init))
    _log_warnings(caught)
    log = _logger()
    log.info(f"{PROG}: {report}")
    if report.pass_through:
        rows = ", ".join(map(str, report.pass_through))
        log.info(f"{PROG}: layer{'s' * (len(report.pass_through) > 1)} {rows} start{'s' * (len(report.pass_through) == 1)}"
                 f" as a pass-through, so the model computes what {base.name} computed (--paper-init keeps the "
                 "paper's initialisation)")
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
    from .compare import compare_models, format_table, plot_comparison

    out = _check_output(args.output, args.force, (".png", ".jpg", ".pdf", ".svg"), "chart") if args.output else None
    rows = compare_models(args.a, args.b, imgsz=args.imgsz, runs=args.runs, threads=args.threads)
    log = _logger()
    log.info(f"\n{format_table(rows)}")
    if out:
        atomic_write(out, lambda tmp: plot_comparison(rows, tmp))
        log.info(f"{PROG}: chart saved to {out}")
    return 0


def cmd_visualize(args: argparse.Namespace) -> int:
    """Draw every TripletAttention layer's gates for one image."""
    from .visualize import OUTPUT_SUFFIXES, visualize

    out = _check_output(args.output, args.force, OUTPUT_SUFFIXES, "output")
    if not Path(args.image).is_file():
        raise FileNotFoundError(f"image '{args.image}' not found (or not a file)")
    atomic_write(out, lambda tmp: visualize(args.model, args.image, tmp, imgsz=args.imgsz))
    _logger().info(f"{PROG}: gates of {args.model} for {args.image} saved to {out}")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    """Train yolov5n-triplet and yolov5n on a synthetic dataset with one budget; compare them."""
    from .demo import demo

    out = Path(args.out)
    text = demo(out, epochs=args.epochs, imgsz=args.imgsz, n_train=args.train_images, batch=args.batch,
                seed=args.seed, force=args.force)
    log = _logger()
    log.info(f"\n{text}\n")
    log.info(
        f"{PROG}: results in {out.resolve()}:\n"
        f"  gates.png          TripletAttention gates of the trained triplet model on a validation image\n"
        f"  results.txt        the table above\n"
        f"  runs/<model>/      ultralytics training runs (weights/best.pt, results.csv)\n"
        f"  shapes/            the synthetic dataset (data.yaml)"
    )
    return 0


# --------------------------------------------------------------------------------------------------------------------
# study
# --------------------------------------------------------------------------------------------------------------------


def cmd_study(args: argparse.Namespace) -> int:
    """Train the plain model and each placement over seeds; print the table of paired differences."""
    from .study import study

    if args.address and args.backend != "ray":
        raise UsageError("--address is for --backend ray")
    extra = {} if args.workers is None else {"workers": args.workers}
    try:
        result = study(
            args.data, model=args.model, placements=args.placements, seeds=args.seeds, epochs=args.epochs,
            imgsz=args.imgsz, batch=args.batch, pretrained=args.pretrained, device=args.device, out=args.out,
            backend=args.backend, address=args.address, latency_runs=args.latency_runs, **extra,
        )
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted; run the same command again to resume the study in {args.out}\n")
        return 130
    except RuntimeError as e:  # a training that failed (on Ray); the finished runs are recorded
        sys.stderr.write(f"{PROG}: {one_line(e)}; the same command again retries the missing runs\n")
        return 1
    log = _logger()
    log.info(f"\n{result.table}\n")
    log.info(
        f"{PROG}: {result.trained} run{'s' * (result.trained != 1)} trained, {result.resumed} resumed, "
        f"{result.reused} reused; results in {result.out.resolve()}:\n"
        f"  study.txt  the table above\n"
        f"  study.csv  one row per run (variant, seed, metrics, times, paths)\n"
        f"  study.png  each seed as a dot, mean ± std per variant\n"
        f"  runs/      the ultralytics training runs"
    )
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
        "visualize attention gates, run an offline demo, and study whether attention helps on your data.",
        epilog="Each command has its own --help. Nothing existing is overwritten without --force.",
    )
    from . import __version__

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
    p.set_defaults(func=cmd_transfer)

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
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("visualize", help="picture of every TripletAttention layer's gates for one image",
                       description="Run a model on one (letterboxed) image and draw, for every TripletAttention "
                       "layer, its spatial H-W gate over the image and its C-W and H-C gates as maps.")
    p.add_argument("model", metavar="MODEL", help="model checkpoint (.pt) or YAML (untrained: initial gates)")
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="where to write the picture")
    p.add_argument("--imgsz", type=int, default=640, help="letterbox size, a multiple of 32 (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite OUT.png if it exists")
    p.set_defaults(func=cmd_visualize)

    p = sub.add_parser("demo", help="offline demo: train yolov5n-triplet and yolov5n on synthetic shapes, compare",
                       description="Make a synthetic shapes dataset, train yolov5n-triplet and plain yolov5n with "
                       "the same seed and budget on the CPU, print parameters, GFLOPs, mAP and wall time side by "
                       "side, and draw the trained triplet model's gates. Needs no internet.")
    p.add_argument("--out", default="triplet-demo", help="output directory, new or empty (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs per model (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=128, help="image size (default: %(default)s)")
    p.add_argument("--train-images", type=int, default=256,
                   help="synthetic training images; a quarter as many (at least 8) validate (default: %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="batch size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the dataset and of both trainings (default: 0)")
    p.add_argument("--force", action="store_true", help="reuse a non-empty --out (replaces an earlier demo's files)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("study", help="does triplet attention help on my data, and where? placements x seeds, paired",
                       description="Train the plain model and each placement (STEM-PLACEMENT.yaml) with the same "
                       "seeds, data, budget and hyper-parameters; print mean ± std per variant, the paired difference "
                       "to the plain model with a 95% t-interval, costs, and a verdict. Writes study.txt, study.csv "
                       "and study.png in --out. Resumable: the same command again reuses finished runs, continues an "
                       "interrupted one and trains only what is missing.")
    p.add_argument("--data", required=True, metavar="DATA.yaml", help="dataset YAML (a local file)")
    p.add_argument("--model", default="yolo11n.yaml", metavar="MODEL.yaml",
                   help="the plain model; placement P is STEM-P.yaml (default: %(default)s)")
    p.add_argument("--placements", nargs="+", default=["triplet", "triplet-neck", "triplet-dense"], metavar="P",
                   help="placements to compare with the plain model: triplet, triplet-neck, triplet-dense "
                   "(default: all three)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, every variant once per seed; >= 2 "
                   "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=50, help="epochs per run (default: %(default)s)")
    p.add_argument("--imgsz", type=int, default=640, help="image size (default: %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="batch size, -1 for auto (default: %(default)s)")
    p.add_argument("--pretrained", metavar="BASE.pt",
                   help="start every variant from these weights (layer-aligned, attention as a pass-through)")
    p.add_argument("--device", help="ultralytics device: 0, 0,1 (DDP), cpu (default: ultralytics chooses)")
    p.add_argument("--workers", type=int, help="dataloader workers per run (default: ultralytics' default)")
    p.add_argument("--out", default="study", help="study directory: new, or holding this same study "
                   "(default: %(default)s)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: one run after another here; ray: each run a Ray task (default: %(default)s)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray instance)")
    p.add_argument("--latency-runs", type=int, default=20, help="timed forward passes per variant "
                   "(default: %(default)s)")
    p.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help/--version (0) and usage errors (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    from .patch import UnknownModuleError

    try:
        return args.func(args) or 0
    except (OSError, ValueError, ImportError, UnknownModuleError) as e:  # OSError: exists, not found, permission
        sys.stderr.write(f"{PROG}: error: {one_line(e)}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
