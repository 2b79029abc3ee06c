"""The training job end to end: data -> train -> convert -> verify with LiteRT -> artifact."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import evaluate
from training.config import TrainConfig
from training.data import NUM_CLASSES, Splits, load_dataset, make_splits
from training.manifest import KERAS_FILE, MANIFEST_FILE, MODEL_FILE, build_manifest, dumps

INPUT_VALUE_RANGE = [0.0, 255.0]
INPUT_DESCRIPTION = (
    "grey levels 0..255, white digit on black (MNIST); "
    "the x/255 scaling is a layer inside the model"
)


@dataclass(frozen=True)
class TrainResult:
    artifact_dir: Path
    manifest: dict
    seconds: float


def quantized_model(model, mode: str, splits: Splits, config: TrainConfig) -> bytes:
    from training.convert import convert, representative_dataset

    calibration = representative_dataset(splits.x_train, config.calibration_size, config.seed)
    return convert(model, mode, calibration if mode == "int8" else None)


def run_training(config: TrainConfig, clock=time.time) -> TrainResult:
    """Raises AccuracyGateError (and writes nothing) when quantization costs too much accuracy."""
    from training.convert import convert
    from training.model import keras_accuracy, train

    started = clock()
    version = config.version or int(started)
    artifact_dir = config.artifacts / config.name / str(version)
    if artifact_dir.exists():
        raise FileExistsError(f"{artifact_dir} already exists; versions are immutable")

    dataset = load_dataset(config.dataset, config.data_path)
    splits = make_splits(
        dataset, config.validation_fraction, config.test_fraction, config.seed, config.limit
    )
    model, epochs_trained = train(
        config, splits.x_train, splits.y_train, splits.x_val, splits.y_val, NUM_CLASSES
    )

    float_accuracy = keras_accuracy(model, splits.x_test, splits.y_test)
    float32_bytes = len(convert(model, "none"))
    content = quantized_model(model, config.quantize, splits, config)
    probabilities = evaluate.tflite_probabilities(content, splits.x_test)
    quantized_accuracy = evaluate.accuracy(probabilities, splits.y_test)
    drop = evaluate.check_accuracy_gate(
        float_accuracy, quantized_accuracy, config.max_accuracy_drop
    )

    input_spec, output_spec = evaluate.tflite_specs(content)
    manifest = build_manifest(
        name=config.name,
        version=version,
        created_at=started,
        dataset={
            "name": dataset.name,
            "source": Path(dataset.source).name,
            "sha256": dataset.sha256,
            "sizes": splits.sizes(),
            "seed": config.seed,
        },
        model={
            "architecture": config.architecture,
            "epochs_trained": epochs_trained,
            "epochs_max": config.epochs,
            "batch_size": config.batch_size,
            "parameters": int(model.count_params()),
        },
        input_spec={
            **input_spec,
            "value_range": INPUT_VALUE_RANGE,
            "description": INPUT_DESCRIPTION,
        },
        output_spec=output_spec,
        labels=[str(i) for i in range(NUM_CLASSES)],
        quantization={
            "mode": config.quantize,
            "calibration_size": config.calibration_size if config.quantize == "int8" else 0,
        },
        evaluation={
            "split": "test",
            "size": int(len(splits.y_test)),
            "float_accuracy": round(float_accuracy, 6),
            "quantized_accuracy": round(quantized_accuracy, 6),
            "accuracy_drop_points": drop,
            "max_accuracy_drop_points": config.max_accuracy_drop,
        },
        sizes={"float32_tflite_bytes": float32_bytes, "tflite_bytes": len(content)},
        model_content=content,
    )

    artifact_dir.mkdir(parents=True)
    (artifact_dir / MODEL_FILE).write_bytes(content)
    model.save(artifact_dir / KERAS_FILE)
    (artifact_dir / MANIFEST_FILE).write_bytes(dumps(manifest))
    return TrainResult(artifact_dir, manifest, clock() - started)


def summary(result: TrainResult) -> str:
    m = result.manifest
    ev, sizes = m["evaluation"], m["sizes"]
    mode = m["quantization"]["mode"]
    return "\n".join(
        [
            f"model {m['name']} version {m['version']} -> {result.artifact_dir}",
            f"  test split ({ev['size']} digits): float {ev['float_accuracy']:.2%}, "
            f"{mode} {ev['quantized_accuracy']:.2%} (drop {ev['accuracy_drop_points']:.2f} points, "
            f"allowed {ev['max_accuracy_drop_points']:.2f})",
            f"  size: float32 TFLite {sizes['float32_tflite_bytes']:,} bytes, {mode} "
            f"{sizes['tflite_bytes']:,} bytes "
            f"({sizes['tflite_bytes'] / sizes['float32_tflite_bytes']:.0%})",
            f"  epochs trained {m['model']['epochs_trained']}, took {result.seconds:.1f} s",
        ]
    )


def write_fixture(result: TrainResult, config: TrainConfig, out: Path, digits: int) -> None:
    """The committed test fixture: model + manifest + held-out digits with the int8 answers."""
    from training.manifest import verify_files

    contents = verify_files(result.artifact_dir, result.manifest)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(contents[MODEL_FILE])
    (out / MANIFEST_FILE).write_bytes(dumps(result.manifest))
    dataset = load_dataset(config.dataset, config.data_path)
    splits = make_splits(dataset, config.validation_fraction, config.test_fraction, config.seed)
    x, y = splits.x_test[:digits], splits.y_test[:digits]
    expected = np.argmax(evaluate.tflite_probabilities(contents[MODEL_FILE], x), axis=1)
    np.savez_compressed(out / "digits.npz", x=x, y=y, expected=expected.astype(np.uint8))
    (out / "README.md").write_text(
        "# Test fixture: a real int8 model from the training job\n\n"
        "Remade with `make fixture` (training/cli.py `fixture`): the default training job "
        f"({result.manifest['dataset']['name']}, seed {result.manifest['dataset']['seed']}) at "
        f"a fixed version {result.manifest['version']}.\n"
        "`digits.npz` holds the test split's digits (`x`, `y`) and what this int8 model "
        "predicts for each through LiteRT (`expected`).\n\n"
        f"```json\n{json.dumps(result.manifest['evaluation'], indent=2)}\n```\n"
    )
