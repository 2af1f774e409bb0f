"""What choosing TripletAttention's formulation costs per call, in this checkout and, side by side, in another one.

Usage:
    python benchmarks/bench_choice.py                          # this checkout alone
    python benchmarks/bench_choice.py --against ../other-tree  # and another checkout, timed in turn with this one

``TripletAttention.formulation(x)`` runs before every call's arithmetic. Each checkout's package is imported in this
one process under a name of its own (``ULTRALYTICS_TRIPLET_DISABLE=1``: neither patches ultralytics), and the
checkouts are timed in turn, round by round (A B, B A, ...), so the machine's load falls on both alike: one thread, a
1x128x5x5 float32 map, an untrained module. Per round and context the figure is the time per call of the fastest
repetition (other jobs on the machine can only slow one down); the report gives each checkout's median over rounds
and, with ``--against``, the ratio other / this per round (above 1: this checkout chooses faster). Contexts: eager
inference (``no_grad``), eager training (gradients on), and ``_traced_formulation()`` on an eval module, the part of
the choice a ``torch.jit.trace`` adds (called from a shallow stack here; inside an exporter the stack is deeper).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import statistics
import sys
import timeit
from pathlib import Path

os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", ULTRALYTICS_TRIPLET_DISABLE="1")  # before torch

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = ("eager inference", "eager training", "traced")


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", type=Path, default=None, help="another checkout of this repository to time alongside")
    p.add_argument("--rounds", type=int, default=60, help="rounds; each times every checkout once, in turn")
    p.add_argument("--calls", type=int, default=500, help="calls per repetition")
    p.add_argument("--repeats", type=int, default=5, help="repetitions per context and round")
    return p.parse_args()


def load(root: Path, alias: str):
    """The package of the checkout ``root``, imported as ``alias``; returns its ``nn`` module."""
    package = root / "ultralytics_triplet"
    spec = importlib.util.spec_from_file_location(alias, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{alias}.nn")


def time_once(nn, args: argparse.Namespace) -> dict[str, float]:
    """Seconds per call of each context: the fastest of ``args.repeats`` repetitions of ``args.calls`` calls."""
    import torch

    m, x, out = nn.TripletAttention(), torch.randn(1, 128, 5, 5), {}
    for label, grad in (("eager inference", False), ("eager training", True)):
        with torch.set_grad_enabled(grad):
            out[label] = min(timeit.repeat(lambda: m.formulation(x), number=args.calls, repeat=args.repeats))
    m.eval()
    out["traced"] = min(timeit.repeat(m._traced_formulation, number=args.calls, repeat=args.repeats))
    return {k: v / args.calls for k, v in out.items()}


def main() -> None:
    """Time the checkouts in turn and print the report."""
    args = parse_args()
    import torch

    torch.set_num_threads(1)
    trees = {"this": ROOT, **({"other": args.against.resolve()} if args.against else {})}
    modules = {name: load(root, f"_choice_{name}") for name, root in trees.items()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for r in range(args.rounds):
        for name in list(trees)[:: 1 if r % 2 == 0 else -1]:
            runs[name].append(time_once(modules[name], args))

    sys.path.insert(0, str(ROOT))
    from ultralytics_triplet.measure import machine

    print(f"Choosing the formulation, per call, 1 thread: {machine()}; median over {args.rounds} rounds of the "
          f"fastest of {args.repeats} x {args.calls} calls")
    for name, root in trees.items():
        print(f"  {name}: {root}")
    header = f"{'context':<16}" + "".join(f"{name + ' (us)':>14}" for name in trees)
    print(header + (f"{'other / this, per round':>40}" if args.against else ""))
    for context in CONTEXTS:
        line = f"{context:<16}" + "".join(
            f"{1e6 * statistics.median(run[context] for run in runs[name]):14.2f}" for name in trees)
        if args.against:
            ratios = [o[context] / t[context] for t, o in zip(runs["this"], runs["other"])]
            line += f"   median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
        print(line)


if __name__ == "__main__":
    main()
