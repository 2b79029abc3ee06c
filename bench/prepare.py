"""The models the bench serves and compares, made with the training job's own library.

`python -m bench.prepare --out DIR` (its own process: the only part of the bench that imports
TensorFlow besides the seed's path) writes

  DIR/art/mnist/VERSION/{model.tflite, manifest.json, model.keras}   the training job's artifact
  DIR/modes/{none,float16,dynamic,int8}.tflite                        the same Keras model, 4 ways
  DIR/art-mlp/...                      the MLP (ARCH=mlp), float32 and int8: int8_bytes_vs_float32
  DIR/art/synthetic-Xmb/VERSION/...    ~1, 10, 100 MB float32 models, packaged by the same job
  DIR/test_split.npz, DIR/prepare.json                                the test split; the figures
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VERSION = 1764400000
MODES = ("none", "float16", "dynamic", "int8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--synthetic-mb", default="1,10,100")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from training import evaluate
    from training.config import TrainConfig
    from training.data import load_dataset
    from training.pipeline import package, quantized_model, run_training

    out = args.out
    config = TrainConfig(
        version=VERSION, artifacts=out / "art", epochs=args.epochs, limit=args.limit
    )
    started = time.perf_counter()
    result = run_training(config)
    summary = {
        "artifact_dir": str(result.artifact_dir),
        "version": VERSION,
        "train_seconds": round(time.perf_counter() - started, 2),
        "epochs": args.epochs,
        "limit": args.limit,
        "test_size": int(len(result.splits.y_test)),
        "keras_float_accuracy": result.manifest["evaluation"]["float"]["accuracy"],
        "manifest_evaluation": result.manifest["evaluation"],
        "served_int8_bytes": result.manifest["sizes"]["tflite_bytes"],
        "modes": {},
    }
    np.savez(out / "test_split.npz", x=result.splits.x_test, y=result.splits.y_test)
    model = keras.models.load_model(result.artifact_dir / "model.keras")
    (out / "modes").mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        started = time.perf_counter()
        content = quantized_model(model, mode, result.splits, config)
        seconds = time.perf_counter() - started
        (out / "modes" / f"{mode}.tflite").write_bytes(content)
        probabilities = evaluate.tflite_probabilities(content, result.splits.x_test)
        summary["modes"][mode] = {
            "bytes": len(content),
            "accuracy": evaluate.accuracy(probabilities, result.splits.y_test),
            "convert_seconds": round(seconds, 3),
        }

    # The MLP, whose bytes are its weights: int8_bytes_vs_float32 is measured on it (most of
    # the CNN's 19 KB int8 file is the flatbuffer's own structure, not weights).
    mlp_config = dataclasses.replace(config, architecture="mlp", artifacts=out / "art-mlp")
    mlp = run_training(mlp_config)
    summary["mlp_keras_float_accuracy"] = mlp.manifest["evaluation"]["float"]["accuracy"]
    summary["mlp_modes"] = {}
    mlp_model = keras.models.load_model(mlp.artifact_dir / "model.keras")
    for mode in ("none", "int8"):
        content = quantized_model(mlp_model, mode, mlp.splits, mlp_config)
        probabilities = evaluate.tflite_probabilities(content, mlp.splits.x_test)
        summary["mlp_modes"][mode] = {
            "bytes": len(content),
            "accuracy": evaluate.accuracy(probabilities, mlp.splits.y_test),
        }
    keras.backend.clear_session()

    # Valid float32 models whose size is one big Dense kernel: image -> Dense(k) -> Dense(classes)
    started = time.perf_counter()
    dataset, summary["synthetic"] = load_dataset(config.dataset), {}  # the default job's data
    pixels, classes = int(np.prod(dataset.x.shape[1:])), len(dataset.class_names)
    for mb in (float(s) for s in args.synthetic_mb.split(",") if s):
        hidden = max(8, int(mb * 1_048_576 / 4 / (pixels + classes)))
        inputs = keras.Input(shape=dataset.x.shape[1:], name="image")
        x = keras.layers.Dense(hidden, activation="relu")(keras.layers.Flatten()(inputs))
        outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(x)
        name = f"synthetic-{mb:g}mb"
        # a size, not a classifier: untrained, so at chance and refused by its gate; FORCE
        # keeps it (the manifest says so) and bench/__main__.py publishes it with FORCE too
        synthetic = dataclasses.replace(config, name=name, quantize="none", force=True)
        about = {"architecture": f"dense-{hidden}"}
        model = keras.Model(inputs, outputs)
        made = package(model, dataset, result.splits, synthetic, about, None, time.time())
        summary["synthetic"][f"{mb:g}"] = {
            "name": name,
            "dir": str(made.artifact_dir),
            "bytes": made.manifest["sizes"]["tflite_bytes"],
            "hidden_units": hidden,
        }
        keras.backend.clear_session()
    summary["synthetic_seconds"] = round(time.perf_counter() - started, 2)
    (out / "prepare.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
