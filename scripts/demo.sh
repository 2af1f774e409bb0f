#!/usr/bin/env bash
# The README's demo command: install the package in a fresh venv, run a tiny study offline (yolov5n, its named
# placement yolov5n-triplet and TripletAttention after layer 4, yolov5n+TA@4, on synthetic shapes, 2 seeds, 10 epochs
# at 64 px on the CPU), then draw the gates of the trained yolov5n-triplet run. The study's console is one progress
# bar; each run's ultralytics log goes to study/runs/RUN/train.log (add --verbose to stream it instead). Results go to
# ./demo_out (or the directory given as first argument): the dataset in study-shapes/, the study in study/ (table,
# CSV, the chart of paired differences study.png), the gate picture in gates.png. The study is resumable: running
# this again reuses the finished runs. Further arguments go to `ultralytics-triplet study`.
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
OUT=$(realpath -m "${1:-$ROOT/demo_out}")
cd "$WORK"
SHAPES="$OUT/study-shapes"
if [ ! -f "$SHAPES/data.yaml" ]; then  # data.yaml is written last: without it the folder is an unfinished attempt
    rm -rf "$SHAPES"
    "$VENV/bin/python" -c 'import sys; from ultralytics_triplet import make_shapes_dataset
make_shapes_dataset(sys.argv[1], n_train=256, n_val=64, imgsz=64)' "$SHAPES"
fi
export OMP_NUM_THREADS=2
"$VENV/bin/ultralytics-triplet" study --data "$SHAPES/data.yaml" --model yolov5n.yaml \
    --placements triplet after:4 --seeds 2 --epochs 10 --imgsz 64 --batch 16 --device cpu --workers 0 \
    --out "$OUT/study" "${@:2}"
IMAGE=$(ls "$SHAPES/images/val" | head -n 1)
"$VENV/bin/ultralytics-triplet" visualize "$OUT/study/runs/yolov5n-triplet-seed0/weights/best.pt" \
    "$SHAPES/images/val/$IMAGE" --imgsz 64 -o "$OUT/gates.png" --force
