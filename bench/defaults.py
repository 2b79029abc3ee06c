"""`python -m bench.defaults`: the training job's defaults beside a reference CNN, on data that is
not only the bundled digits. Not part of `make bench` (minutes of training per set); run it when
a training default changes. docs/own-data.md gives its figures.

For each set (the bundled ``mnist-sample``, and training.synthetic's ``letters`` and
``textures``, or any of its kinds):

1. the training job with no option but where to write, ``python -m training train --name SET
   --dataset FOLDER`` (what ``make train NAME=SET DATASET=FOLDER`` runs), in a checkout
   (``--checkout``: this one, or an older one to measure "before"), timed;
2. its served model (model.tflite through mlcore.predictor, every image prepared from the manifest
   as the function prepares it) on held-out images: a folder of the same kind made with another
   seed, never trained on (for mnist-sample, the run's own test split: there is no other);
3. the reference (``--reference``): a plain CNN, three conv/max-pool blocks of 32, 64 and 64
   filters, dense 64, dropout 0.3, inputs scaled to [-1, 1], Adam, early stopping on the
   validation loss with patience 10 and the best weights restored, trained on exactly the
   training and validation images the job used (its manifest's split, made again), float, on the
   same held-out images.

Every accuracy with its 95% Wilson interval and n. Writes JSON (``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SETS = ("mnist-sample", "letters", "textures")
DEFAULT_SEED = 42  # the training job's (training/config.py)


def held_out_images(folder: Path, spec, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every image of a class-folder set, prepared as the function prepares an uploaded image
    for a model of this input spec (mlcore.images.InputSpec), labelled by `labels`' order."""
    from PIL import Image

    from mlcore.images import prepare

    x, y = [], []
    for label, name in enumerate(labels):
        for path in sorted((folder / name).glob("*.png")):
            with Image.open(path) as image:
                x.append(prepare(image, spec))
            y.append(label)
    return np.stack(x).astype(np.uint8), np.array(y)


def score(predicted: np.ndarray, y: np.ndarray) -> dict:
    from training.evaluate import proportion

    return proportion(int(np.sum(predicted == y)), len(y))


def run_job(checkout: Path, name: str, dataset: str, artifacts: Path, extra: str = "") -> dict:
    """The training job as `make train NAME=name DATASET=dataset` runs it, in `checkout`
    (`extra`: more options, e.g. to open a gate so that a refused model can be measured)."""
    command = [sys.executable, "-m", "training", "train", "--name", name, "--dataset", dataset]
    command += ["--artifacts", str(artifacts), "--version", "1", *extra.split()]
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    folder = artifacts / name / "1"
    manifest = json.loads((folder / "manifest.json").read_text()) if folder.is_dir() else None
    return {
        "exit": done.returncode,
        "seconds": round(seconds, 1),
        "manifest": manifest,
        "folder": folder,
        "output": (done.stdout + done.stderr)[-3000:],
    }


def job_figures(job: dict, held_out: tuple[np.ndarray, np.ndarray] | None) -> dict:
    from mlcore.predictor import Predictor

    manifest = job["manifest"]
    figures = {"exit": job["exit"], "seconds": job["seconds"]}
    if manifest is None:
        return {**figures, "output": job["output"]}
    model = manifest["model"]
    figures |= {
        "epochs": model.get("epochs_trained"),
        "stopped": model.get("stopped", {}).get("reason"),
        "test_split": manifest["evaluation"]["quantized"],
        "gate": manifest["evaluation"].get("gate", {}).get("passed"),
    }
    if held_out is not None:
        predictor = Predictor.from_file(str(job["folder"] / "model.tflite"))
        figures["served_held_out"] = score(
            predictor.predict(held_out[0]).argmax(axis=1), held_out[1]
        )
    return figures


def reference_cnn(input_shape: tuple[int, ...], classes: int):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    for filters in (32, 64, 64):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train_reference(dataset: str, held_out_folder: Path | None, seed: int) -> dict:
    """The reference on the training and validation split the job makes with this seed (the
    same images), its weights from the same seed, scored on the held-out folder (or, without
    one, the job's test split)."""
    import keras

    from training.config import TrainConfig
    from training.data import load_dataset, make_splits

    defaults = TrainConfig()
    data = load_dataset(dataset)
    splits = make_splits(data, defaults.validation_fraction, defaults.test_fraction, seed)
    keras.utils.set_random_seed(seed)
    model = reference_cnn(splits.x_train.shape[1:], len(data.class_names))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    started = time.perf_counter()
    history = model.fit(
        splits.x_train.astype(np.float32),
        splits.y_train,
        epochs=500,
        validation_data=(splits.x_val.astype(np.float32), splits.y_val),
        callbacks=[stop],
        verbose=0,
    )
    seconds = time.perf_counter() - started
    figures = {"epochs": len(history.history["loss"]), "seconds": round(seconds, 1)}
    if held_out_folder is None:
        x, y, key = splits.x_test, splits.y_test, "test_split"
    else:
        x, y = held_out_images(held_out_folder, data.input_spec, data.class_names)
        key = "served_held_out"
    predicted = model.predict(x.astype(np.float32), verbose=0).argmax(axis=1)
    return {**figures, key: score(predicted, y)}


def measure(set_name: str, seed: int, args, work: Path) -> dict:
    """One set, one seed (of the split and the weights, for the job and the reference)."""
    from training.synthetic import make_folder

    if set_name == "mnist-sample":
        dataset, held_out_folder = set_name, None
    else:
        folder, held_out_folder = work / set_name, work / f"{set_name}-held-out"
        if not folder.is_dir():
            make_folder(set_name, folder, args.per_class, seed=0)
            make_folder(set_name, held_out_folder, args.held_out, seed=1)
        dataset = str(folder)
    result: dict = {"set": set_name, "seed": seed}
    runs = (("before", args.before, args.before_args), ("after", args.checkout, args.after_args))
    for label, checkout, extra in runs:
        if checkout is None:
            continue
        options = f"--seed {seed} {extra}" if seed != DEFAULT_SEED else extra
        artifacts = work / f"artifacts-{label}-{seed}"
        shutil.rmtree(artifacts, ignore_errors=True)  # a run again in the same --work
        job = run_job(checkout.resolve(), set_name, dataset, artifacts, options)
        held_out = None
        if job["manifest"] is not None and held_out_folder is not None:
            from mlcore.images import InputSpec

            spec = InputSpec.from_manifest(job["manifest"])
            held_out = held_out_images(held_out_folder, spec, job["manifest"]["labels"])
        result[label] = job_figures(job, held_out) | ({"options": options} if options else {})
        print(f"{set_name} seed {seed} {label}: {json.dumps(result[label])[:300]}", flush=True)
    if args.reference:
        result["reference"] = train_reference(dataset, held_out_folder, seed)
        print(f"{set_name} seed {seed} reference: {json.dumps(result['reference'])}", flush=True)
    return result


def describe(figures: dict | None, key: str) -> str:
    from training.evaluate import describe_accuracy

    if not figures or key not in figures:
        return "-"
    return describe_accuracy(figures[key])


def table(results: list[dict]) -> str:
    rows = [
        "| set | seed | run | exit | epochs | stopped | seconds | test split | held-out, served |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        for run in ("before", "after", "reference"):
            figures = result.get(run)
            if figures is None:
                continue
            rows.append(
                f"| {result['set']} | {result['seed']} | {run} | {figures.get('exit', '')} | "
                f"{figures.get('epochs', '-')} | {figures.get('stopped') or '-'} | "
                f"{figures['seconds']} | {describe(figures, 'test_split')} | "
                f"{describe(figures, 'served_held_out')} |"
            )
    return "\n".join(rows)


def over_seeds(results: list[dict]) -> str:
    """Per set and run: the mean held-out accuracy over the seeds and its range (each seed's
    own interval is in the table above: the seeds share the held-out images, so pooling them
    into one interval would overstate its precision), and the mean epochs and time."""
    rows = ["| set | run | seeds | held-out accuracy: mean (min to max) | mean epochs | mean s |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for set_name in dict.fromkeys(r["set"] for r in results):
        for run in ("before", "after", "reference"):
            runs = [r[run] for r in results if r["set"] == set_name and run in r]
            key = "served_held_out" if any("served_held_out" in f for f in runs) else "test_split"
            accuracies = [f[key]["accuracy"] for f in runs if key in f]
            if not accuracies:
                continue
            epochs = [f["epochs"] for f in runs if f.get("epochs")]
            rows.append(mean_row([set_name, run], accuracies, epochs, [f["seconds"] for f in runs]))
    return "\n".join(rows)


def mean_row(cells: list[str], accuracies: list[float], epochs: list, seconds: list) -> str:
    """A table row of runs over seeds: the cells naming them, how many, the mean accuracy and
    its range, the mean epochs and seconds (bench/candidates' over-seeds table too)."""
    return (
        f"| {' | '.join(cells)} | {len(accuracies)} | "
        f"{np.mean(accuracies):.1%} ({min(accuracies):.1%} to {max(accuracies):.1%}) | "
        f"{np.mean(epochs) if epochs else 0:.1f} | {np.mean(seconds):.1f} |"
    )


def sets_parser(prog: str, doc: str, sets: tuple[str, ...]) -> argparse.ArgumentParser:
    """A measurement script's command line: its docstring as help, and --sets."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sets", default=",".join(sets), help="mnist-sample and synthetic kinds")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = sets_parser("python -m bench.defaults", __doc__, SETS)
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="the checkout measured (--no-checkout: none)"
    )
    parser.add_argument("--no-checkout", dest="checkout", action="store_const", const=None)
    parser.add_argument("--before", type=Path, help="another checkout, measured first (before)")
    parser.add_argument("--before-args", default="", help="options of the before run")
    parser.add_argument("--after-args", default="", help="options of the after run")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--per-class", type=int, default=150, help="training images per class")
    parser.add_argument("--held-out", type=int, default=40, help="held-out images per class")
    parser.add_argument(
        "--seeds", default=str(DEFAULT_SEED), help="seeds of the split and weights, e.g. 1,2,3"
    )
    parser.add_argument("--work", type=Path, help="where the sets and artifacts go (kept)")
    parser.add_argument("--out", type=Path, default=Path(".local/defaults.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        seeds = [int(seed) for seed in args.seeds.split(",")]
        results = [
            measure(name, seed, args, work) for name in args.sets.split(",") for seed in seeds
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results) + "\n\n" + over_seeds(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
