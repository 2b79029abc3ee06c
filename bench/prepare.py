"""The models the bench serves and compares, made with the training job's own library.

`python -m bench.prepare --out DIR` (its own process: the only part of the bench that imports
TensorFlow besides the seed's path) writes

  DIR/art/mnist/VERSION/{model.tflite, manifest.json, model.keras}   the training job's artifact
  DIR/modes/{none,float16,dynamic,int8}.tflite                        the same Keras model, 4 ways
  DIR/synthetic/NAME/VERSION/{model.tflite, manifest.json}           ~1, 10, 100 MB float models
  DIR/prepare.json                                                    accuracies, sizes, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VERSION = 1764400000
MODES = ("none", "float16", "dynamic", "int8")


def train(out: Path, epochs: int, limit: int | None) -> dict:
    import keras

    from training import evaluate
    from training.config import TrainConfig
    from training.model import keras_probabilities
    from training.pipeline import quantized_model, run_training

    config = TrainConfig(version=VERSION, artifacts=out / "art", epochs=epochs, limit=limit)
    started = time.perf_counter()
    result = run_training(config)
    train_seconds = time.perf_counter() - started
    splits = result.splits
    model = keras.models.load_model(result.artifact_dir / "model.keras")
    float_accuracy = evaluate.accuracy(keras_probabilities(model, splits.x_test), splits.y_test)
    modes = {}
    (out / "modes").mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        started = time.perf_counter()
        content = quantized_model(model, mode, splits, config)
        seconds = time.perf_counter() - started
        (out / "modes" / f"{mode}.tflite").write_bytes(content)
        probabilities = evaluate.tflite_probabilities(content, splits.x_test)
        modes[mode] = {
            "bytes": len(content),
            "accuracy": evaluate.accuracy(probabilities, splits.y_test),
            "convert_seconds": round(seconds, 3),
        }
    np_path = out / "test_split.npz"
    import numpy as np

    np.savez(np_path, x=splits.x_test, y=splits.y_test)
    return {
        "artifact_dir": str(result.artifact_dir),
        "version": VERSION,
        "train_seconds": round(train_seconds, 2),
        "epochs": epochs,
        "limit": limit,
        "test_size": int(len(splits.y_test)),
        "keras_float_accuracy": float_accuracy,
        "manifest_evaluation": result.manifest["evaluation"],
        "served_int8_bytes": result.manifest["sizes"]["tflite_bytes"],
        "modes": modes,
    }


def synthetic(out: Path, megabytes: list[float]) -> dict:
    """Valid float32 models whose size is one big Dense kernel:
    28x28 -> Flatten -> Dense(k) -> Dense(10)."""
    import keras
    from keras import layers

    from training import evaluate
    from training.convert import convert
    from training.manifest import build_manifest, dumps

    made = {}
    for mb in megabytes:
        hidden = max(8, int(mb * 1_048_576 / 4 / (784 + 10)))
        inputs = keras.Input(shape=(28, 28), name="image")
        x = layers.Flatten()(inputs)
        x = layers.Dense(hidden, activation="relu", name="big")(x)
        outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
        model = keras.Model(inputs, outputs)
        content = convert(model, "none")
        input_spec, output_spec = evaluate.tflite_specs(content)
        name = f"synthetic-{mb:g}mb"
        manifest = build_manifest(
            name=name,
            version=VERSION,
            created_at=time.time(),
            dataset={"name": "none", "sha256": "", "sizes": {}, "seed": 0},
            model={"architecture": f"dense-{hidden}", "parameters": int(model.count_params())},
            input_spec={**input_spec, "value_range": [0.0, 255.0]},
            output_spec=output_spec,
            labels=[str(i) for i in range(10)],
            quantization={"mode": "none", "calibration_size": 0},
            evaluation={},
            sizes={"float32_tflite_bytes": len(content), "tflite_bytes": len(content)},
            model_content=content,
        )
        directory = out / "synthetic" / name / str(VERSION)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.tflite").write_bytes(content)
        (directory / "manifest.json").write_bytes(dumps(manifest))
        made[f"{mb:g}"] = {
            "name": name,
            "dir": str(directory),
            "bytes": len(content),
            "hidden_units": hidden,
        }
        keras.backend.clear_session()
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--synthetic-mb", default="1,10,100")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = train(args.out, args.epochs, args.limit)
    sizes = [float(s) for s in args.synthetic_mb.split(",") if s]
    started = time.perf_counter()
    summary["synthetic"] = synthetic(args.out, sizes)
    summary["synthetic_seconds"] = round(time.perf_counter() - started, 2)
    (args.out / "prepare.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
