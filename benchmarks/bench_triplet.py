"""TripletAttention vs a plain copy of the official (permute-based) module, side by side in one process.

Usage:
    python benchmarks/bench_triplet.py            # full run (about 30 s on 2 idle cores)
    python benchmarks/bench_triplet.py --quick    # a short run
    python benchmarks/bench_triplet.py --threads 4 --skip-networks
    python benchmarks/bench_triplet.py --skip-maps --net-reps 21     # only the whole-network overheads

Per feature map (batch 8, float32, CPU): median and min-max wall time of an inference forward and of a training step
(forward + backward), official vs ours, timed interleaved (one call of each in turn, repeated), their ratio, each time
as a multiple of one full read+write pass over the map (``x * 1.0``), and the bytes autograd keeps for backward
(every saved tensor's storage counted once, the input's excluded). Then small maps (2x2, 5x5, 10x10 at 128-512
channels, where each call's fixed costs weigh most) at batch 8 and 1, and whether ours takes at most the official
module's time on every map. Then whole yolov5s networks with attention after the last backbone C3 (the row before
SPPF) and after every C3, each with the official module and with ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

TARGETS = {"forward": 3.0, "train": 2.5, "saved": 0.2, "floor": 3.0}
SMALL_MAPS = [(c, s, s) for c in (128, 256, 512) for s in (2, 5, 10)]
SMALL_BATCHES = (8, 1)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions and a smaller network section")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (also OMP/MKL_NUM_THREADS)")
    p.add_argument("--batch", type=int, default=8, help="batch size of the feature-map rows")
    p.add_argument("--reps", type=int, default=None, help="timed repetitions per feature-map row")
    p.add_argument("--skip-networks", action="store_true", help="only the feature-map rows")
    p.add_argument("--skip-maps", action="store_true", help="only the whole-network rows")
    p.add_argument("--skip-small", action="store_true", help="leave out the small maps")
    p.add_argument("--net-reps", type=int, default=None, help="timed repetitions per network (default 9, quick 3)")
    p.add_argument(
        "--breakdown", action="store_true", help="also split the dense network's module time into its steps"
    )
    p.add_argument(
        "--compile", action="store_true", help="with --breakdown: also time the module under torch.compile (inductor)"
    )
    return p.parse_args()


ARGS = parse_args()
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checkout import use_checkout  # noqa: E402

use_checkout(__file__, ARGS.threads)  # benchmark this checkout's package, on these threads

import torch  # noqa: E402
from _common import MAPS, OfficialTriplet, flat, geomean, saved_bytes  # noqa: E402
from torch import nn  # noqa: E402

from ultralytics_triplet.nn import TripletAttention  # noqa: E402

torch.set_num_threads(ARGS.threads)


# --- measurement helpers --------------------------------------------------------------------------------------
def timed(fn) -> float:
    """Wall time of one call, in ms."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def interleaved(fns: dict, reps: int, warmup: int = 2) -> dict[str, list[float]]:
    """Time each callable ``reps`` times, one call of each in turn so drifts and neighbours hit all alike."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    out = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            out[k].append(timed(f))
    return out


def fmt_ms(ts: list[float]) -> str:
    """'median (min-max)' in ms."""
    return f"{statistics.median(ts):7.2f} ({min(ts):6.2f}-{max(ts):6.2f})"


def machine() -> str:
    """CPU model, cores, threads and library versions."""
    from ultralytics_triplet.measure import cpu_name

    cpu = cpu_name()
    try:
        import ultralytics

        ul = ultralytics.__version__
    except Exception:  # the network section is optional
        ul = "not installed"
    return (
        f"{cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}; torch {torch.__version__}, ultralytics {ul}, "
        f"python {platform.python_version()}"
    )


# --- per-feature-map rows -------------------------------------------------------------------------------------
def bench_map(c: int, h: int, w: int, reps: int, batch: int | None = None) -> dict:
    """Official vs ours on one (batch, c, h, w) map (batch: ``--batch`` unless given)."""
    torch.manual_seed(0)
    off, ours = OfficialTriplet(), TripletAttention()
    ours.load_state_dict(off.state_dict(), strict=True)
    batch = batch or ARGS.batch
    x = torch.randn(batch, c, h, w)
    grad = torch.randn_like(x)
    xo, xu = x.clone().requires_grad_(), x.clone().requires_grad_()

    def infer(m):
        def f():
            m.eval()
            with torch.inference_mode():
                m(x)

        return f

    def train(m, xi):
        def f():
            m.train()
            xi.grad = None
            m.zero_grad(set_to_none=True)
            m(xi).backward(grad)

        return f

    def floor():
        x * 1.0

    fns = {
        "floor": floor,
        "fwd_off": infer(off),
        "fwd_ours": infer(ours),
        "train_off": train(off, xo),
        "train_ours": train(ours, xu),
    }
    t = interleaved(fns, reps)
    off.train(), ours.train()
    return {
        "shape": (c, h, w),
        "batch": batch,
        "t": t,
        "saved_off": saved_bytes(off, xo),
        "saved_ours": saved_bytes(ours, xu),
        "bytes": x.numel() * x.element_size(),
    }


def report_maps(rows: list[dict]) -> list[str]:
    """Table lines for the feature-map rows, then geometric means vs targets."""
    med = lambda r, k: statistics.median(r["t"][k])  # noqa: E731
    lines = [
        f"Feature maps: batch {ARGS.batch}, float32, official = permute-based copy; times in ms, median (min-max);",
        "'floor' = x * 1.0 (one read + one write of the map); xF = time as a multiple of the floor",
        "",
        f"{'map CxHxW':<12} {'pass':<8} {'floor ms':>8} {'official':>24} {'ours':>24} {'speedup':>8} "
        f"{'off xF':>7} {'ours xF':>7}",
    ]
    for r in rows:
        name = "x".join(map(str, r["shape"]))
        fl = med(r, "floor")
        for kind, label in (("fwd", "forward"), ("train", "train")):
            o, u = med(r, f"{kind}_off"), med(r, f"{kind}_ours")
            lines.append(
                f"{name:<12} {label:<8} {fl:8.3f} {fmt_ms(r['t'][kind + '_off']):>24} "
                f"{fmt_ms(r['t'][kind + '_ours']):>24} {o / u:7.2f}x {o / fl:7.1f} {u / fl:7.1f}"
            )
    lines += ["", f"{'map CxHxW':<12} {'map MB':>7} {'saved official MB':>18} {'saved ours MB':>14} {'ratio':>7}"]
    for r in rows:
        name = "x".join(map(str, r["shape"]))
        lines.append(
            f"{name:<12} {r['bytes'] / 2**20:7.1f} {r['saved_off'] / 2**20:18.2f} {r['saved_ours'] / 2**20:14.3f} "
            f"{r['saved_ours'] / r['saved_off']:7.3f}"
        )
    g_fwd = geomean([med(r, "fwd_off") / med(r, "fwd_ours") for r in rows])
    g_train = geomean([med(r, "train_off") / med(r, "train_ours") for r in rows])
    g_saved = geomean([r["saved_ours"] / r["saved_off"] for r in rows])
    g_floor = geomean([med(r, "fwd_ours") / med(r, "floor") for r in rows])
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    lines += [
        "",
        "Geometric means over the maps vs targets:",
        f"  inference forward speedup   {g_fwd:6.2f}x   target >= {TARGETS['forward']}x   "
        f"{verdict(g_fwd >= TARGETS['forward'])}",
        f"  training step speedup       {g_train:6.2f}x   target >= {TARGETS['train']}x   "
        f"{verdict(g_train >= TARGETS['train'])}",
        f"  saved-for-backward ratio    {g_saved:6.3f}x   target <= {TARGETS['saved']}x   "
        f"{verdict(g_saved <= TARGETS['saved'])}",
        f"  ours forward / floor        {g_floor:6.2f}    aim    <= {TARGETS['floor']}     "
        f"{verdict(g_floor <= TARGETS['floor'])}",
    ]
    return lines


def report_small(rows: list[dict], reps: int) -> list[str]:
    """Table lines for the small maps: official and ours, inference forward and training step, and their ratio."""
    med = lambda r, k: statistics.median(r["t"][k])  # noqa: E731
    lines = [
        f"Small maps: float32, {ARGS.threads} threads, median of {reps} interleaved calls; times in us; ratio = "
        "official / ours (above 1: ours faster)",
        "",
        f"{'batch x map':<16} {'fwd official':>12} {'fwd ours':>9} {'ratio':>6} {'train official':>15} "
        f"{'train ours':>11} {'ratio':>6}",
    ]
    for r in rows:
        name = f"{r['batch']} x " + "x".join(map(str, r["shape"]))
        fo, fu, to, tu = (1e3 * med(r, k) for k in ("fwd_off", "fwd_ours", "train_off", "train_ours"))
        lines.append(f"{name:<16} {fo:12.0f} {fu:9.0f} {fo / fu:6.2f} {to:15.0f} {tu:11.0f} {to / tu:6.2f}")
    return lines


def report_not_slower(rows: list[dict]) -> list[str]:
    """Whether ours takes at most the official module's time on every map, inference and training step."""
    med = lambda r, k: statistics.median(r["t"][k])  # noqa: E731
    lines = ["", "Ours <= official on every map (median times):"]
    for kind, label in (("fwd", "inference forward"), ("train", "training step")):
        ratios = {f"{r['batch']} x " + "x".join(map(str, r["shape"])): med(r, f"{kind}_off") / med(r, f"{kind}_ours")
                  for r in rows}
        worst = min(ratios, key=ratios.get)
        slower = [k for k, v in ratios.items() if v < 1]
        lines.append(f"  {label:<18} {'PASS' if not slower else 'FAIL'}: lowest official/ours {ratios[worst]:.2f} "
                     f"({worst})" + (f"; ours slower on {', '.join(slower)}" if slower else ""))
    return lines


# --- whole networks -------------------------------------------------------------------------------------------
def yolov5s():
    """yolov5s (ultralytics' yolov5.yaml at scale 's'), 80 classes."""
    import ultralytics
    from ultralytics.nn.tasks import DetectionModel, yaml_model_load

    cfg = yaml_model_load(Path(ultralytics.__file__).parent / "cfg/models/v5/yolov5.yaml")
    cfg["scale"] = "s"
    torch.manual_seed(0)
    return DetectionModel(cfg, nc=80, verbose=False)


def with_attention(model, indices, cls):
    """Wrap ``model.model[i]`` as Sequential(layer, cls()) for each i, keeping the routing attributes."""
    for i in indices:
        layer = model.model[i]
        seq = nn.Sequential(layer, cls())
        seq.i, seq.f, seq.type, seq.np = layer.i, layer.f, f"{layer.type}+{cls.__name__}", layer.np
        model.model[i] = seq
    return model


def bench_networks(reps: int, imgsz: int = 320, batch: int = 2) -> list[str]:
    """Training-step and inference overhead of attention placements in yolov5s, official module vs ours."""
    base = yolov5s()
    c3 = [m.i for m in base.model if m.type.endswith(".C3")]
    sppf = next(m.i for m in base.model if m.type.endswith(".SPPF"))
    placements = {"before SPPF": [sppf - 1], f"after every C3 ({len(c3)})": c3}
    variants = {"yolov5s": base}
    for pname, idx in placements.items():
        for label, cls in (("official", OfficialTriplet), ("ours", TripletAttention)):
            m = with_attention(yolov5s(), idx, cls)
            if cls is TripletAttention:  # same attention weights in both variants
                src = variants[f"{pname} / official"]
                m.load_state_dict(src.state_dict(), strict=True)
            variants[f"{pname} / {label}"] = m
    imgs = torch.randn(batch, 3, imgsz, imgsz)

    def train(m):
        def f():
            m.train()
            m.zero_grad(set_to_none=True)
            loss = sum((t.float() ** 2).mean() for t in flat(m(imgs)))
            loss.backward()

        return f

    def infer(m):
        def f():
            m.eval()
            with torch.inference_mode():
                m(imgs)

        return f

    t_train = interleaved({k: train(m) for k, m in variants.items()}, reps, warmup=1)
    t_inf = interleaved({k: infer(m) for k, m in variants.items()}, reps, warmup=1)
    base_tr, base_inf = statistics.median(t_train["yolov5s"]), statistics.median(t_inf["yolov5s"])
    lines = [
        f"Whole network: yolov5s, imgsz {imgsz}, batch {batch}, float32; ms median (min-max); overhead over yolov5s",
        "",
        f"{'network':<32} {'train step':>24} {'overhead':>9} {'inference':>24} {'overhead':>9}",
    ]
    for k in variants:
        tr, inf = statistics.median(t_train[k]), statistics.median(t_inf[k])
        lines.append(
            f"{k:<32} {fmt_ms(t_train[k]):>24} {100 * (tr / base_tr - 1):+8.1f}% "
            f"{fmt_ms(t_inf[k]):>24} {100 * (inf / base_inf - 1):+8.1f}%"
        )
    for pname in placements:
        o_tr = statistics.median(t_train[f"{pname} / official"]) - base_tr
        u_tr = statistics.median(t_train[f"{pname} / ours"]) - base_tr
        o_inf = statistics.median(t_inf[f"{pname} / official"]) - base_inf
        u_inf = statistics.median(t_inf[f"{pname} / ours"]) - base_inf
        lines.append(f"  {pname}: added ms official -> ours: train {o_tr:.1f} -> {u_tr:.1f}, "
                     f"inference {o_inf:.1f} -> {u_inf:.1f}")
    return lines


def bench_breakdown(reps: int, imgsz: int = 320, batch: int = 2) -> list[str]:
    """Inference time of one module on each map of the dense placement, split into the steps of forward_no_grad."""
    import torch.nn.functional as F

    from ultralytics_triplet._eager import gate as _gate
    from ultralytics_triplet._fused import gate_product, zpool_maps

    base, shapes = yolov5s().eval(), []
    c3 = [m for m in base.model if m.type.endswith(".C3")]
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for m in c3]
    with torch.inference_mode():
        base(torch.randn(batch, 3, imgsz, imgsz))
    for h in hooks:
        h.remove()
    lines = [
        f"Dense placement, step by step: one inference forward (eval, no gradients) on each map the {len(shapes)} "
        f"modules see in yolov5s at imgsz {imgsz}, batch {batch}; ms, median of {reps} interleaved runs",
        "",
        f"{'map CxHxW':<12} {'module':>7} {'pool':>7} {'3 convs':>8} {'BN+sigm':>8} {'scale':>7} {'map pass':>9} "
        f"{'module/pass':>12}" + (f" {'compiled':>9}" if ARGS.compile else ""),
    ]
    totals = dict.fromkeys(("module", "pool", "convs", "rest", "scale", "pass", "compiled"), 0.0)
    per_shape = {}
    for shape in shapes:
        if shape not in per_shape:
            torch.manual_seed(0)
            m, x = TripletAttention().eval(), torch.randn(batch, *shape)
            with torch.inference_mode():  # the steps of forward_no_grad
                pooled = zpool_maps(x, True)
                gates = [m.cw, m.hc, m.hw]
                g = [_gate(gate, p) for gate, p in zip(gates, pooled)]
                a, b, c = g[0].transpose(1, 2), g[1].permute(0, 3, 2, 1), g[2]
                k = m.kernel_size // 2
                # each conv on the map orientation _gate gives it: the longer side last
                oriented = [(p.transpose(2, 3).contiguous(), gate.conv.conv.weight.transpose(2, 3))
                            if p.shape[2] > p.shape[3] else (p.contiguous(), gate.conv.conv.weight)
                            for gate, p in zip(gates, pooled)]
                fns = {
                    "module": lambda: m(x),
                    "pool": lambda: zpool_maps(x, True),
                    "gates": lambda: [_gate(gate, p) for gate, p in zip(gates, pooled)],
                    "convs": lambda: [F.conv2d(p, w, padding=k) for p, w in oriented],
                    "scale": lambda: gate_product(x, a, b, c, 1 / 3),
                    "pass": lambda: x * 1.0,
                }
                if ARGS.compile:  # the module through inductor: fused pooling and scaling, the convs stay oneDNN's
                    compiled = torch.compile(m, dynamic=False)
                    compiled(x)
                    fns["compiled"] = lambda: compiled(x)
                t = {key: statistics.median(v) for key, v in interleaved(fns, reps, warmup=3).items()}
            t["rest"] = max(t.pop("gates") - t["convs"], 0.0)  # BN + sigmoid (and the gates' transposes)
            per_shape[shape] = t
        t = per_shape[shape]
        for key in totals:
            totals[key] += t.get(key, 0.0)
        lines.append(
            f"{'x'.join(map(str, shape)):<12} {t['module']:7.3f} {t['pool']:7.3f} {t['convs']:8.3f} {t['rest']:8.3f} "
            f"{t['scale']:7.3f} {t['pass']:9.3f} {t['module'] / t['pass']:11.0f}x"
            + (f" {t['compiled']:9.3f}" if ARGS.compile else "")
        )
    tm = totals["module"]
    lines += [
        f"{'sum':<12} {tm:7.3f} {totals['pool']:7.3f} {totals['convs']:8.3f} {totals['rest']:8.3f} "
        f"{totals['scale']:7.3f} {totals['pass']:9.3f} {tm / totals['pass']:11.0f}x"
        + (f" {totals['compiled']:9.3f}" if ARGS.compile else ""),
        f"  shares of the module time: pooling {totals['pool'] / tm:.0%}, the gates' 2->1 7x7 convs "
        f"{totals['convs'] / tm:.0%}, BN + sigmoid {totals['rest'] / tm:.0%}, scaling {totals['scale'] / tm:.0%}; "
        f"the map passes the module cannot avoid (2 reads + 1 write) would be {3 * totals['pass']:.2f} ms",
    ]
    if ARGS.compile:
        lines.append(f"  torch.compile (inductor) of the module: {totals['compiled']:.2f} ms; eager / compiled "
                     f"{tm / totals['compiled']:.2f}")
    return lines + [""] + breakdown_training(shapes, batch)


def breakdown_training(shapes: list[tuple], batch: int, steps: int = 20) -> list[str]:
    """Shares of a training step (forward + backward, forward_fused) of the dense placement's modules, by kind of op.

    Measured with ``torch.profiler`` (which adds a cost per op, so small ops weigh a little more than they do
    unprofiled): each kind's inclusive CPU time over the summed self time of every op.
    """
    from torch.profiler import profile

    torch.manual_seed(0)
    mods = [TripletAttention().train() for _ in shapes]
    xs = [torch.randn(batch, *s, requires_grad=True) for s in shapes]
    gs = [torch.randn(batch, *s) for s in shapes]

    def step():
        for m, x, g in zip(mods, xs, gs):
            m(x).backward(g)

    for _ in range(3):
        step()
    with profile() as prof:
        for _ in range(steps):
            step()
    events = {e.key: e for e in prof.key_averages()}
    total = sum(e.self_cpu_time_total for e in events.values())
    kinds = {
        "the gates' convs, forward + backward": ("aten::convolution", "aten::convolution_backward"),
        "Z-pooling, forward + backward": ("_ZPool3", "_ZPool3Backward"),
        "scaling, forward + backward": ("_TripletScale", "_TripletScaleBackward"),
        "BN + sigmoid, forward + backward": (
            "aten::batch_norm", "aten::native_batch_norm_backward", "aten::sigmoid", "aten::sigmoid_backward",
        ),
    }
    shares = {k: sum(events[n].cpu_time_total for n in names if n in events) / total for k, names in kinds.items()}
    rest = max(0.0, 1 - sum(shares.values()))
    return [
        f"Training step (forward + backward) of the same {len(shapes)} modules, batch {batch}, under torch.profiler "
        f"({steps} steps): shares of the time by kind of op",
        *(f"  {k:<40} {v:6.0%}" for k, v in shares.items()),
        f"  {'everything else (autograd, views, Python)':<40} {rest:6.0%}",
    ]


def main() -> None:
    """Run and print."""
    reps = ARGS.reps or (7 if ARGS.quick else 31)
    t0 = time.perf_counter()
    print(f"Machine: {machine()}")
    print(f"Package: {Path(sys.modules['ultralytics_triplet'].__file__).parent}")
    print(f"Command: python {' '.join(sys.argv)}  (reps per row {reps})\n", flush=True)
    if not ARGS.skip_maps:
        rows = [bench_map(c, h, w, reps) for c, h, w in MAPS]
        print("\n".join(report_maps(rows)), flush=True)
        if not ARGS.skip_small:
            small_reps = 5 * reps  # calls of a few hundred us: more of them for a stable median
            small = [bench_map(c, h, w, small_reps, b) for b in SMALL_BATCHES for c, h, w in SMALL_MAPS]
            print("\n" + "\n".join(report_small(small, small_reps)), flush=True)
            rows += small
        print("\n".join(report_not_slower(rows)), flush=True)
    if not ARGS.skip_networks:
        print()
        print("\n".join(bench_networks(ARGS.net_reps or (3 if ARGS.quick else 9))), flush=True)
    if ARGS.breakdown:
        print()
        print("\n".join(bench_breakdown(reps)), flush=True)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
