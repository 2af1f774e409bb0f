"""Make a benchmark import this checkout's ``ultralytics_triplet``, not an installed copy.

An installed copy's start-up hook (.pth) may have imported itself before the benchmark runs; then the benchmark starts
again with the checkout first on PYTHONPATH, so the hook imports the checkout instead. Call :func:`use_checkout`
before importing torch or the package.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_checkout(script: str, threads: int | None = None) -> None:
    """Re-run ``script`` with the checkout first on PYTHONPATH if the package was imported from elsewhere.

    ``threads`` sets OMP_NUM_THREADS and MKL_NUM_THREADS first, which torch reads when it is imported (and ultralytics
    sets to 1 when they are unset) and a re-run inherits.
    """
    if threads is not None:
        os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    loaded = sys.modules.get("ultralytics_triplet")
    if loaded is not None and ROOT not in Path(loaded.__file__).resolve().parents:
        if os.environ.get("_TRIPLET_BENCH_REEXEC"):
            sys.exit(f"cannot import ultralytics_triplet from {ROOT}; it comes from {loaded.__file__}")
        pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        os.environ.update(PYTHONPATH=pythonpath, _TRIPLET_BENCH_REEXEC="1")
        os.execv(sys.executable, [sys.executable, str(Path(script).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(ROOT))
