"""The training job end to end: data -> train -> convert -> verify with LiteRT -> artifact."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcore import stats
from mlcore.registry import MANIFEST_FILE, MODEL_FILE
from training import evaluate
from training.config import BACKBONES, ArtifactConfig, TrainConfig, parse_image_size
from training.data import (
    Dataset,
    Splits,
    load_dataset,
    make_splits,
    split_record,
    with_test_set,
)
from training.manifest import KERAS_FILE, REPORT_FILE, build_manifest, dumps

INPUT_DESCRIPTION = (
    "pixel values 0..255 in the input shape (height, width, channels); whatever scaling the "
    "model needs is inside the converted graph"
)


@dataclass(frozen=True)
class TrainResult:
    artifact_dir: Path
    manifest: dict
    seconds: float
    splits: Splits


def quantized_model(model, mode: str, splits: Splits, config: ArtifactConfig) -> bytes:
    from training.convert import convert, representative_dataset

    calibration = representative_dataset(splits.x_train, config.calibration_size, config.seed)
    return convert(model, mode, calibration if mode == "int8" else None)


def describe_dataset(dataset: Dataset, splits: Splits) -> str:
    """What a run read: 'dataset PATH: 5 classes, 150 images each (A, B, ...), 64x64 rgb
    (resize: stretch); split 600 train, 75 validation, 75 test'."""
    counts = dataset_counts(dataset)
    names = dataset.class_names
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    if len(set(counts.values())) == 1:
        per_class = f"{next(iter(counts.values()))} images each ({shown})"
    else:
        listed = [f"{name} {counts[name]}" for name in names[:10]]
        per_class = "images per class: " + ", ".join(listed) + (", ..." if len(names) > 10 else "")
    spec = dataset.input_spec
    sizes = splits.sizes()
    return (
        f"dataset {dataset.name}: {len(names)} classes, {per_class}; "
        f"{spec.height}x{spec.width} {spec.color} (resize: {dataset.policy}); "
        f"split {sizes['train']} train, {sizes['validation']} validation, {sizes['test']} test"
        + (f" (test: {dataset.test_set['name']})" if dataset.test_set else "")
    )


def describe_training(config: TrainConfig, input_shape: tuple[int, ...]) -> str:
    """'training cnn (augmentation: light): at most 100 epochs, ...'; for a backbone also its
    starting weights, the size it sees and its two phases."""
    level, flip = config.augmentation
    augmentation = "none" if level == "none" and not flip else level + (", flip" if flip else "")
    how = [f"augmentation: {augmentation}"]
    from training.model import backbone_input_size, phases

    if config.architecture in BACKBONES:
        height, width = backbone_input_size(config, *input_shape[:2])
        source = config.pretrained
        how.insert(0, f"weights: {source or 'none (random)'}, seen at {height}x{width}")
    text = (
        f"training {config.architecture} ({'; '.join(how)}): at most {config.max_epochs} epochs, "
        f"stopping after {config.stop_patience} without a better validation loss, within "
        f"{config.max_minutes:g} minutes"
    )
    if config.pretrained is not None:
        head, fine_tune = phases(config)
        text += (
            f"; first the new head, the backbone frozen (learning rate {head.learning_rate:g}), "
            f"then every weight fine-tuned (learning rate {fine_tune.learning_rate:g})"
        )
    return text


def dataset_counts(dataset: Dataset) -> dict[str, int]:
    """Images per class over the whole dataset (its own splits included)."""
    labels = np.concatenate([dataset.y, *(y for _, y in dataset.own.values())])
    counts = np.bincount(labels, minlength=len(dataset.class_names))
    return {name: int(n) for name, n in zip(dataset.class_names, counts, strict=True)}


def run_training(
    config: TrainConfig, clock=time.time, say=print, monotonic=time.monotonic
) -> TrainResult | None:
    """The artifact, written even when the gate fails (its manifest records the verdict; publish
    refuses it). None on a worker of a multi-worker run that is not the chief (which writes the
    artifact). `say`: progress lines; `monotonic`: the time budget's clock."""
    started, budget_started = clock(), monotonic()
    artifact_dir(config, started)  # fail before training if the version already exists
    dataset = load_dataset(
        config.dataset, parse_image_size(config.image_size), config.color, config.resize
    )
    if config.test_dataset:
        dataset = with_test_set(dataset, config.test_dataset)
    splits = make_splits(
        dataset, config.validation_fraction, config.test_fraction, config.seed, config.limit
    )
    say(describe_dataset(dataset, splits))
    say(describe_training(config, splits.x_train.shape[1:]))
    args = (splits.x_train, splits.y_train, splits.x_val, splits.y_val, len(dataset.class_names))
    distributed = {}
    if config.distribute:
        from training.distribute import train_distributed

        run = train_distributed(config, *args, started=budget_started, clock=monotonic)
        if not run.chief:
            return None
        model, history, stopped = run.model, run.history, run.stopped
        distributed = {"distribute": run.about}
    else:
        from training.model import train

        model, history, stopped = train(config, *args, started=budget_started, clock=monotonic)
    from training.model import describe_model

    about = {
        "architecture": config.architecture,
        **describe_model(config, splits.x_train.shape[1:]),
        "epochs_trained": len(history.get("loss", [])),
        "epochs_max": config.max_epochs,
        "stopped": stopped,
        "batch_size": config.batch_size,
        **distributed,
    }
    return package(model, dataset, splits, config, about, history, started, clock)


def artifact_dir(config: ArtifactConfig, started: float) -> Path:
    folder = config.artifacts / config.name / str(config.version or int(started))
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; versions are immutable")
    return folder


def package(
    model,
    dataset: Dataset,
    splits: Splits,
    config: ArtifactConfig,
    about: dict,
    history: dict[str, list[float]] | None,
    started: float,
    clock=time.time,
) -> TrainResult:
    """A Keras model taking pixel values 0..255 -> the artifact: converted in config.quantize
    mode, evaluated on the test split through the function's own predictor, gated, and written
    with its manifest, whose `baseline` (mlcore.stats) is that same evaluation as the function
    would see it: predicted classes, confidences and input statistics. `about`: what the
    manifest says of the model (architecture or source); `history`: the per-epoch training
    history (loss, accuracy, val_loss, val_accuracy), if it was trained here."""
    from training.convert import convert
    from training.model import keras_probabilities

    folder = artifact_dir(config, started)
    labels = dataset.class_names
    float_score = evaluate.scorecard(
        keras_probabilities(model, splits.x_test).argmax(axis=1), splits.y_test, labels
    )
    float32_bytes = len(convert(model, "none"))
    content = quantized_model(model, config.quantize, splits, config)
    probabilities = evaluate.tflite_probabilities(content, splits.x_test)
    quantized_score = evaluate.scorecard(probabilities.argmax(axis=1), splits.y_test, labels)
    checks = [
        evaluate.chance_check(quantized_score, splits.y_test, labels),
        *(
            [evaluate.min_accuracy_check(quantized_score, config.min_accuracy)]
            if config.min_accuracy is not None
            else []
        ),
        evaluate.quantization_check(float_score, quantized_score, config.max_accuracy_drop),
    ]
    gate = evaluate.verdict(checks, config.force)
    drop = checks[-1]["drop_points"]

    input_spec, output_spec = evaluate.tflite_specs(content)
    manifest = build_manifest(
        name=config.name,
        version=int(folder.name),
        created_at=started,
        dataset={
            "name": dataset.name,  # DATASET as given: what held_out_split loads again
            "sha256": dataset.sha256,
            "classes": len(dataset.class_names),
            "sizes": splits.sizes(),
            "per_class": dataset_counts(dataset),
            "seed": config.seed,
            "split": split_record(
                config.validation_fraction, config.test_fraction, config.seed, config.limit
            ),
            **({"test_set": dataset.test_set} if dataset.test_set else {}),
        },
        model={**about, "parameters": int(model.count_params())},
        input_spec={
            **input_spec,
            **dataset.input_spec.manifest_fields(),
            "description": INPUT_DESCRIPTION,
        },
        output_spec=output_spec,
        labels=labels,
        quantization={
            "mode": config.quantize,
            "calibration_size": config.calibration_size if config.quantize == "int8" else 0,
        },
        evaluation={
            "split": "test",
            # every accuracy here is a fraction in [0, 1], with its 95% Wilson interval and n
            "units": "fraction",
            "float": float_score,
            "quantized": quantized_score,
            "accuracy_drop_points": drop,
            "max_accuracy_drop_points": config.max_accuracy_drop,
            "gate": gate,
        },
        training={"history": history} if history else {},
        baseline=stats.baseline(probabilities, splits.x_test, labels),
        sizes={"float32_tflite_bytes": float32_bytes, "tflite_bytes": len(content)},
        model_content=content,
    )

    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(content)
    model.save(folder / KERAS_FILE)
    (folder / MANIFEST_FILE).write_bytes(dumps(manifest))
    from training.report import write_report  # matplotlib: only once there is a model to show

    write_report(folder, splits.x_test, splits.y_test)
    return TrainResult(folder, manifest, clock() - started, splits)


def summary(result: TrainResult) -> str:
    m = result.manifest
    ev, sizes = m["evaluation"], m["sizes"]
    mode = m["quantization"]["mode"]
    stopped = m["model"].get("stopped")
    gate = ev.get("gate", {})
    quantization = next((c for c in gate.get("checks", []) if c["name"] == "quantization"), {})
    allowed = quantization.get("allowed_points", ev["max_accuracy_drop_points"])
    warning = evaluate.still_improving_warning(stopped) if stopped else None
    if not gate:
        verdict = "none recorded"  # a manifest from before the gate
    elif gate["passed"]:
        verdict = "passed"
    else:
        verdict = "FAILED" + (", kept with FORCE=1" if gate.get("forced") else "")
    data = m["dataset"]
    split = ", ".join(f"{n} {part}" for part, n in data.get("sizes", {}).items())
    return "\n".join(
        [
            f"model {m['name']} version {m['version']} -> {result.artifact_dir}",
            f"  dataset {data['name']}: {data.get('classes')} classes; {split}",
            f"  accuracy on the held-out test split ({ev['quantized']['n']} examples, 95% "
            "intervals):",
            f"    float  {evaluate.describe_accuracy(ev['float'])}",
            f"    {mode:<6} {evaluate.describe_accuracy(ev['quantized'])}",
            f"    drop {ev['accuracy_drop_points']:.2f} points (allowed {allowed:.2f})",
            f"  gate: {verdict}"  # the quantization check is the drop line above
            + "".join(
                f"\n    {check['message']}"
                for check in gate.get("checks", [])
                if check["name"] != "quantization"
            ),
            f"  size: float32 TFLite {sizes['float32_tflite_bytes']:,} bytes, {mode} "
            f"{sizes['tflite_bytes']:,} bytes "
            f"({sizes['tflite_bytes'] / sizes['float32_tflite_bytes']:.0%})",
            *[f"  {note}" for note in m["model"].get("notes", [])],
            f"  {m['model'].get('architecture', 'converted')} model"
            + (f", {evaluate.describe_stop(stopped)}" if stopped else "")
            + f"; took {result.seconds:.1f} s",
            *([f"  warning: {warning}"] if warning else []),
            *[f"  report {p}" for p in [result.artifact_dir / REPORT_FILE] if p.is_file()],
        ]
    )


def refused(result: TrainResult, trained: bool) -> str | None:
    """The message when the gate failed and FORCE was not given (nothing may be published),
    else None."""
    m = result.manifest
    gate = m["evaluation"]["gate"]
    if gate["passed"] or gate["forced"]:
        return None
    fraction = m["dataset"].get("split", {}).get("test_fraction")
    own_test = "test_set" in m["dataset"]
    return evaluate.refusal(gate, trained, None if own_test else fraction)


def write_fixture(result: TrainResult, out: Path, digits: int) -> None:
    """The committed test fixture: model + manifest + held-out digits with the int8 answers."""
    from training.manifest import verify_files

    contents = verify_files(result.artifact_dir, result.manifest)
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(contents[MODEL_FILE])
    (out / MANIFEST_FILE).write_bytes(dumps(result.manifest))
    x, y = result.splits.x_test[:digits], result.splits.y_test[:digits]
    expected = np.argmax(evaluate.tflite_probabilities(contents[MODEL_FILE], x), axis=1)
    # grey digits as (N, 28, 28): the shape clients send most and Pillow reads as is
    np.savez_compressed(
        out / "digits.npz",
        x=x.squeeze(-1),
        y=y.astype(np.uint8),
        expected=expected.astype(np.uint8),
    )
    quantized = result.manifest["evaluation"]["quantized"]
    (out / "README.md").write_text(
        "# Test fixture: a real int8 model from the training job\n\n"
        "Remade with `make fixture` (training/cli.py `fixture`): the default training job "
        f"({result.manifest['model']['architecture']} on {result.manifest['dataset']['name']}, "
        f"seed {result.manifest['dataset']['seed']}) at a fixed version "
        f"{result.manifest['version']}.\n"
        "`digits.npz` holds the test split's digits (`x` as (N, 28, 28), `y`) and what this int8 "
        "model predicts for each through LiteRT (`expected`).\n\n"
        f"Quantized accuracy on the test split: {evaluate.describe_accuracy(quantized)}.\n"
    )
