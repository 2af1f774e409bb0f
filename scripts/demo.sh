#!/usr/bin/env bash
# The README's demo command: install the package in a fresh venv and run the offline demo (synthetic data,
# yolov5n-triplet vs yolov5n). Results go to ./demo_out (or the directory given as first argument); running it again
# replaces only what an earlier demo wrote there (--force), other files in that directory are left alone.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT=$(realpath -m "${1:-$ROOT/demo_out}")
cd "$WORK"
OMP_NUM_THREADS=2 "$VENV/bin/ultralytics-triplet" demo --out "$OUT" --force "${@:2}"
