"""Is Triplet Attention worth it on my data, against what I would do instead? A seeded, paired, resumable study.

The plain model, its references (other plain models, such as the next scale: ``scale-up``) and each placement built
with each module (a named one, ``STEM-PLACEMENT.yaml``: ``yolo11n.yaml`` -> ``yolo11n-triplet-neck.yaml``; explicit
positions, ``after:4,6``: ``yolo11n+TA@4,6.yaml``, ``yolo11n+CBAM@4,6.yaml``; or ``each-backbone``) are trained
through the normal ultralytics trainer with the same seeds, data, budget and hyper-parameters, locally or as Ray
tasks. Each row's result is the paired difference to the plain model at the same seed, with a 95% t-interval, a
verdict (Holm-adjusted over the rows where there are several; where it finds no difference, how far from detectable
it is), its cost in the runtime the model ships in, and whether it is worth it, read on the same paired evidence: a
row is worth its cost only where its gain is detectable.

One job per file: ``steps`` (``run_study``, ``conduct`` and the steps), ``options`` (``StudyOptions``, the one object
that carries a study's options to every step, and the words they take), ``stats`` (t quantiles, paired intervals and
tests, Holm), ``variants`` (what each row builds, its name and role), ``plan`` (the options checked, the rows and the
settings), ``fingerprint`` (what makes two studies the same), ``store`` (``study.json`` and the records), ``run`` (one
training run), ``data_order`` (each seed its own data order), ``console`` (progress bars, each run's log file),
``backends`` (local, Ray), ``readings`` (verdicts and worth-it readings as typed values), ``decision`` (the verdicts,
how far from detectable, the front), ``report`` (summaries; the table and the CSV, where the readings become words),
``costs`` (parameters, GFLOPs, latency in a runtime) and ``plot`` (the chart).

Output directory (``out``):
    study.json         the study's settings and their fingerprint (a changed setting is a different study)
    models/            the configs the study builds itself (``yolo11n+TA@4,6.yaml``, ``yolo11n-CBAM.yaml``)
    records/RUN.json   one file per finished run, written atomically (what makes the study resumable)
    runs/RUN/          the ultralytics training runs (RUN is ``<config stem>-seed<k>``), each with its train.log
    study.txt          the table; study.csv one row per run; study.png each row's paired difference to the plain
                       model (mean, 95% interval, each seed), each seed's value, and accuracy against latency
    export.log         what ultralytics' exporter printed (``latency`` ``onnx`` or ``openvino``)

Examples:
    >>> from ultralytics_triplet import run_study
    >>> result = run_study("data.yaml", model="yolov5n.yaml", placements=["triplet", "after:4"], seeds=3,
    ...                    modules=["TripletAttention", "CBAM"], references=["scale-up"], latency="onnx")
    >>> print(result.table)

    The same study from an options object (as the command line runs it):

    >>> from ultralytics_triplet.study import StudyOptions, conduct
    >>> result = conduct(StudyOptions("data.yaml", model="yolov5n.yaml", seeds=3, train_args={"workers": 0}))
"""

from __future__ import annotations

__all__ = ("StudyOptions", "StudyResult", "conduct", "run_study")


def __getattr__(name: str):
    """Import the names on first use (PEP 562): the command line reads ``study.options`` for its help text without
    importing torch and ultralytics."""
    if name == "StudyOptions":
        from .options import StudyOptions

        return StudyOptions
    if name in __all__:
        from . import steps

        return getattr(steps, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
