"""Train YOLOv5n with Triplet Attention on a synthetic shapes dataset, offline, through the plain ultralytics API.

    python examples/train_shapes.py

Nothing here imports ultralytics_triplet for the model: once the package is installed, ultralytics itself finds
'yolov5n-triplet.yaml' and the TripletAttention layer. The dataset generator is the only import from the package.
"""

from pathlib import Path

from ultralytics import YOLO

from ultralytics_triplet import make_shapes_dataset

out = Path("shapes_example").resolve()
data = out / "data" / "data.yaml"
if not data.exists():
    data = make_shapes_dataset(out / "data", n_train=64, n_val=16, imgsz=128)

model = YOLO("yolov5n-triplet.yaml")
metrics = model.train(data=str(data), epochs=3, imgsz=128, batch=16, workers=0, device="cpu",
                      project=str(out), name="train", exist_ok=True)
print(f"mAP50-95 {metrics.box.map:.3f}; weights, curves and plots are in {model.trainer.save_dir}")
