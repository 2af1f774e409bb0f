#!/usr/bin/env bash
# The README's demo command: install the package in a fresh venv (with its onnx extra), then run a small study offline
# that weighs Triplet Attention against what a user would do instead: yolov5n and its named placement `triplet`, with
# TripletAttention and with ultralytics' CBAM at the same place, against the plain model and the next scale up
# (yolov5s, `scale-up`), 2 seeds, with the latency timed in ONNX Runtime on each row's exported model (in PyTorch where
# onnxruntime is missing: EXTRAS= without it); then it draws the gates of the trained yolov5n-triplet run.
# The budget lets the models learn while the whole script, setup included, fits in ten minutes on two otherwise idle
# CPU cores: synthetic shapes (384 train and 64 val images of 96 px, up to 3 shapes each), 9 epochs at 96 px, batch 16.
# ultralytics steps the optimizer once per 64 images (its nominal batch) and warms up for 3 epochs, so the number of
# images seen sets how far a run gets; a smaller budget leaves every row barely trained, and the study would then
# compare models that have not learned the task.
# The study's console is one progress bar; each run's ultralytics log goes to study/runs/RUN/train.log (add --verbose
# to stream it instead). Results go to ./demo_out (or the directory given as first argument): the dataset in
# study-shapes/, the study in study/ (table, CSV, the chart study.png), the gate picture in gates.png. The study is
# resumable: running this again reuses the finished runs. Further arguments go to `ultralytics-triplet study`.
EXTRAS=${EXTRAS-[onnx]}
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT=$(realpath -m "${1:-$ROOT/demo_out}")
cd "$WORK"
SHAPES="$OUT/study-shapes"
if [ ! -f "$SHAPES/data.yaml" ]; then  # data.yaml is written last: without it the folder is an unfinished attempt
    rm -rf "$SHAPES"
    "$VENV/bin/python" -c 'import sys; from ultralytics_triplet import make_shapes_dataset
make_shapes_dataset(sys.argv[1], n_train=384, n_val=64, imgsz=96, max_objects=3)' "$SHAPES"
fi
LATENCY=torch
if "$VENV/bin/python" -c 'import onnxruntime, onnx, onnxslim' 2>/dev/null; then LATENCY=onnx; fi
export OMP_NUM_THREADS=2
"$VENV/bin/ultralytics-triplet" study --data "$SHAPES/data.yaml" --model yolov5n.yaml \
    --placements triplet --modules TripletAttention CBAM --references scale-up --latency "$LATENCY" \
    --seeds 2 --epochs 9 --imgsz 96 --batch 16 --device cpu --workers 0 --out "$OUT/study" "${@:2}"
IMAGE=$(ls "$SHAPES/images/val" | head -n 1)
"$VENV/bin/ultralytics-triplet" visualize "$OUT/study/runs/yolov5n-triplet-seed0/weights/best.pt" \
    "$SHAPES/images/val/$IMAGE" --imgsz 96 -o "$OUT/gates.png" --force
