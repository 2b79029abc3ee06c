"""`python -m bench.candidates`: the architectures and augmentations a user can choose, side by side
on data that is not only the bundled digits, to choose the default by. Not part of `make bench`
(minutes of training per run); run it when a training default changes. docs/own-data.md gives
its figures ("Choosing the default").

It reuses bench/defaults.py: the sets (the bundled ``mnist-sample`` and training.synthetic's
kinds, made seeded: 150 training images per class and 40 held-out per class from another seed),
the training job as ``make train`` runs it (``run_job``: ``python -m training train --name SET
--dataset FOLDER`` plus the candidate's options, in a fresh process, timed), and the reference
CNN of issue 20 (``train_reference``). Each candidate runs alone, one after another (``nice`` it:
the machine is shared), and is measured on:

- accuracy, float (model.keras) and int8 as served (model.tflite through the function's own
  predictor, each image prepared from the manifest as the function prepares it), on the
  held-out images (for mnist-sample: its test split), each with its 95% Wilson interval and n;
- the served model's bytes (model.tflite, what is published and downloaded at a cold start);
- its batch-1 latency as served: the median of ``--calls`` single-image predictions through
  the same predictor, after 10 unmeasured ones;
- the whole training command's wall time, and the 1-minute load average before and after it
  (2 cores shared with other work: read times with the load beside them).

A backbone's pretrained path (WEIGHTS=<file>) runs with a weights file this script makes and
saves (``--weights-file``: a backbone of random weights, saved as keras.applications builds it):
ImageNet's cannot be downloaded here. It measures what pretrained weights cost (input resized to
224, two phases, bytes, latency), not what ImageNet's features would score.

Writes JSON (``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.defaults import (
    DEFAULT_SEED,
    ROOT,
    held_out_images,
    mean_row,
    run_job,
    score,
    sets_parser,
    train_reference,
)

# name -> the training job's options (`{mobilenet}`: the weights file this script makes). The
# backbones train with light augmentation, as the CNN does by default.
CANDIDATES = {
    "cnn": "--augment none",
    "cnn, light": "--augment light",
    "cnn, strong": "--augment strong",
    "mobilenet, none": "--architecture mobilenet --weights none --augment light",
    "efficientnet, none": "--architecture efficientnet --weights none --augment light",
    "mobilenet, file": "--architecture mobilenet --weights {mobilenet} --augment light",
    "efficientnet, file": "--architecture efficientnet --weights {efficientnet} --augment light",
}
SETS = ("mnist-sample", "letters", "textures", "dials")


def make_weights_files(folder: Path) -> dict[str, str]:
    """A weights file per backbone, standing in for pretrained weights: the backbone as
    training/model.py builds it for starting weights (224x224, no top), random weights, saved
    with save_weights (the file a user saves where ImageNet's can be downloaded)."""
    import keras

    from training.model import BACKBONES

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, spec in BACKBONES.items():
        path = folder / f"{name}.weights.h5"
        if not path.is_file():
            keras.utils.set_random_seed(0)
            size = spec.pretrained_size
            backbone = spec.build(
                input_shape=(size, size, 3),
                include_top=False,
                weights=None,
                pooling="avg",
                **spec.options,
            )
            backbone.save_weights(path)
        files[name] = str(path)
    return files


def latency_ms(model_file: Path, x: np.ndarray, calls: int) -> float:
    """Median batch-1 prediction time through the function's predictor, in milliseconds."""
    from mlcore.predictor import Predictor

    predictor = Predictor.from_file(str(model_file))
    for i in range(10):
        predictor.predict(x[i % len(x)][None])
    times = []
    for i in range(calls):
        started = time.perf_counter()
        predictor.predict(x[i % len(x)][None])
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def float_predictions(keras_file: Path, x: np.ndarray) -> np.ndarray:
    import keras

    model = keras.saving.load_model(keras_file, compile=False)
    return model.predict(x.astype(np.float32), batch_size=64, verbose=0).argmax(axis=1)


def measure(candidate: str, set_name: str, seed: int, args, work: Path, weights: dict) -> dict:
    from mlcore.images import InputSpec
    from mlcore.predictor import Predictor
    from training.data import held_out_split
    from training.synthetic import make_folder

    if set_name == "mnist-sample":
        dataset, held_out_folder = set_name, None
    else:
        dataset = str(work / set_name)
        held_out_folder = work / f"{set_name}-held-out"
        if not (work / set_name).is_dir():
            make_folder(set_name, work / set_name, args.per_class, seed=0)
            make_folder(set_name, held_out_folder, args.held_out, seed=1)
    options = CANDIDATES[candidate].format(**weights)
    if seed != DEFAULT_SEED:
        options += f" --seed {seed}"
    options += f" {args.extra}".rstrip()
    artifacts = work / "artifacts" / f"{candidate.replace(', ', '-')}-{seed}"
    shutil.rmtree(artifacts, ignore_errors=True)
    load_before = os.getloadavg()[0]
    job = run_job(ROOT, set_name, dataset, artifacts, options)
    result = {
        "candidate": candidate,
        "set": set_name,
        "seed": seed,
        "options": options,
        "exit": job["exit"],
        "seconds": job["seconds"],
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    manifest = job["manifest"]
    if manifest is None:
        return {**result, "output": job["output"]}
    folder = job["folder"]
    if held_out_folder is None:
        x, y = held_out_split(manifest)
        result["held_out"] = "test split"
    else:
        spec = InputSpec.from_manifest(manifest)
        x, y = held_out_images(held_out_folder, spec, manifest["labels"])
        result["held_out"] = f"{held_out_folder.name}, another seed"
    served = Predictor.from_file(str(folder / "model.tflite")).predict(x).argmax(axis=1)
    stopped = manifest["model"].get("stopped", {})
    return result | {
        "float": score(float_predictions(folder / "model.keras", x), y),
        "int8": score(served, y),
        "bytes": manifest["sizes"]["tflite_bytes"],
        "latency_ms": latency_ms(folder / "model.tflite", x, args.calls),
        "epochs": manifest["model"].get("epochs_trained"),
        "phases": [(p["name"], p["epochs"]) for p in stopped.get("phases", [])],
        "stopped": stopped.get("reason"),
        "gate": manifest["evaluation"].get("gate", {}).get("passed"),
        "parameters": manifest["model"].get("parameters"),
    }


def reference(set_name: str, seed: int, args, work: Path) -> dict:
    """Issue 20's reference CNN (float) on the same training and held-out images."""
    held_out_folder = None if set_name == "mnist-sample" else work / f"{set_name}-held-out"
    dataset = set_name if set_name == "mnist-sample" else str(work / set_name)
    load_before = os.getloadavg()[0]
    figures = train_reference(dataset, held_out_folder, seed)
    key = "test_split" if held_out_folder is None else "served_held_out"
    return {
        "candidate": "reference CNN (float)",
        "set": set_name,
        "seed": seed,
        "float": figures[key],
        "epochs": figures["epochs"],
        "seconds": figures["seconds"],
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def in_order(results: list[dict]) -> list[dict]:
    """By set (SETS first, in their order), then candidate (CANDIDATES' order, the reference
    last), then seed: the order the docs' table reads in, whatever order the runs were made."""
    sets = {name: i for i, name in enumerate(SETS)}
    candidates = {name: i for i, name in enumerate(CANDIDATES)}
    return sorted(
        results,
        key=lambda r: (
            sets.get(r["set"], len(sets)),
            r["set"],
            candidates.get(r["candidate"], len(candidates)),
            r["seed"],
        ),
    )


def table(results: list[dict]) -> str:
    from training.evaluate import describe_accuracy

    rows = [
        "| set | candidate | seed | float, held-out | int8 as served, held-out | int8 bytes | "
        "batch-1 ms | epochs | training s (load) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in in_order(results):
        accuracy = {k: describe_accuracy(r[k]) if k in r else "-" for k in ("float", "int8")}
        served = [f"{r['bytes']:,}", f"{r['latency_ms']:.2f}"] if "bytes" in r else ["-", "-"]
        phases = " + ".join(str(n) for _, n in r.get("phases", []))
        epochs = f"{r.get('epochs', '-')}" + (f" ({phases})" if phases else "")
        if r.get("stopped") not in (None, "converged"):
            epochs += f", {r['stopped']}"  # the budget or the maximum, not early stopping
        if r.get("exit"):
            epochs += f", exit {r['exit']}"
        load = " to ".join(f"{v:g}" for v in r.get("load", []))
        cells = [r["set"], r["candidate"], str(r["seed"]), accuracy["float"], accuracy["int8"]]
        cells += [*served, epochs]
        rows.append("| " + " | ".join([*cells, f"{r['seconds']:.0f} ({load})"]) + " |")
    return "\n".join(rows)


def over_seeds(results: list[dict]) -> str:
    """Per set and candidate run with more than one seed: the mean int8 held-out accuracy over
    the seeds and its range (the seeds share the held-out images, so each seed's own interval,
    in the table above, is the honest one), and the mean epochs and training time."""
    rows = [
        "| set | candidate | seeds | int8 held-out: mean (min to max) | mean epochs | mean s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in in_order(results):
        groups.setdefault((r["set"], r["candidate"]), []).append(r)
    for (set_name, candidate), runs in groups.items():
        key = "int8" if all("int8" in r for r in runs) else "float"
        accuracies = [r[key]["accuracy"] for r in runs if key in r]
        if len(accuracies) < 2:
            continue
        epochs = [r["epochs"] for r in runs if r.get("epochs")]
        name = candidate + " (float)" * (key == "float")
        rows.append(mean_row([set_name, name], accuracies, epochs, [r["seconds"] for r in runs]))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = sets_parser("python -m bench.candidates", __doc__, SETS)
    parser.add_argument(
        "--candidates", default=";".join(CANDIDATES), help=f"';'-separated: {'; '.join(CANDIDATES)}"
    )
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seeds", default=str(DEFAULT_SEED), help="e.g. 42,1,2")
    parser.add_argument("--per-class", type=int, default=150, help="training images per class")
    parser.add_argument("--held-out", type=int, default=40, help="held-out images per class")
    parser.add_argument("--calls", type=int, default=200, help="batch-1 calls timed per model")
    parser.add_argument("--extra", default="", help="more options for every run")
    parser.add_argument("--work", type=Path, help="where the sets, weights, artifacts go (kept)")
    parser.add_argument("--out", type=Path, default=Path(".local/candidates.json"))
    parser.add_argument("--tables", action="store_true", help="print the tables of --out, run none")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.tables:
        results = json.loads(args.out.read_text())
        print(table(results) + "\n\n" + over_seeds(results))
        return 0
    chosen = [c.strip() for c in args.candidates.split(";") if c.strip()]
    unknown = [c for c in chosen if c not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; allowed: {'; '.join(CANDIDATES)}")
    results = json.loads(args.out.read_text()) if args.out.is_file() else []
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        weights = make_weights_files(work / "weights") if any("file" in c for c in chosen) else {}
        for set_name in args.sets.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                names = chosen + (["reference"] if args.reference else [])
                for name in names:
                    if name == "reference":
                        result = reference(set_name, seed, args, work)
                    else:
                        result = measure(name, set_name, seed, args, work, weights)
                    same = (result["candidate"], result["set"], result["seed"])
                    results = [
                        r for r in results if (r["candidate"], r["set"], r["seed"]) != same
                    ] + [result]
                    args.out.parent.mkdir(parents=True, exist_ok=True)
                    args.out.write_text(json.dumps(results, indent=2) + "\n")  # after each run
                    print(json.dumps(result)[:400], flush=True)
    print(table(results) + "\n\n" + over_seeds(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
