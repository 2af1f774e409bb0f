"""Interpreter-start cost of the install hook, from ``python -X importtime`` (target: <= 3 ms).

    python benchmarks/bench_startup.py [--runs 30]

Runs ``python -X importtime -c pass`` repeatedly in the current environment (where the wheel's .pth is installed;
run it from the installed wheel, not with PYTHONPATH pointing at a checkout)
and reports the cumulative import time of ``ultralytics_triplet`` (the hook's only import at start), and checks
that no heavy module (torch, numpy, ultralytics, pluggy, importlib.metadata) is imported at start.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys


def hook_import_us() -> tuple[int, set[str]]:
    """Return (cumulative µs of importing ultralytics_triplet at start, set of modules imported at start)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True).stderr
    cumulative, modules = None, set()
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line or "cumulative" in line:
            continue
        _, cum, name = (part.strip() for part in line[len("import time:"):].split("|"))
        modules.add(name.strip())
        if name.strip() == "ultralytics_triplet":
            cumulative = int(cum)
    if cumulative is None:
        sys.exit("ultralytics_triplet is not imported at start: is the wheel (and its .pth) installed here?")
    return cumulative, modules


def machine() -> str:
    """CPU model and core count, from /proc/cpuinfo where there is one."""
    import os

    from ultralytics_triplet.measure import cpu_name  # torch-free: this process measures start-up imports

    return f"{cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    samples, heavy = [], set()
    for _ in range(args.runs):
        us, modules = hook_import_us()
        samples.append(us / 1000)
        heavy |= modules & {"torch", "numpy", "ultralytics", "pluggy", "importlib.metadata"}
    median = statistics.median(samples)
    print(f"machine: {machine()}")
    print(f"start-up hook import: median {median:.2f} ms, min {min(samples):.2f}, max {max(samples):.2f} "
          f"over {args.runs} runs; target <= 3 ms: {'PASS' if median <= 3 else 'FAIL'}")
    print(f"heavy modules imported at start: {sorted(heavy) or 'none'}")


if __name__ == "__main__":
    main()
