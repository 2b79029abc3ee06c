"""A user's own small image folder through `make train` with no option but NAME and DATASET:
a folder that can be learnt gives a model that passes its gate, a folder of random pixels is
refused (exit 3, what to try) and never published, and the time budget ends a run that would
take too long, saying so. Whole training runs: `make test-slow`."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest

from mlcore.images import InputSpec
from mlcore.predictor import Predictor
from tests.conftest import ROOT
from training.config import AUGMENT, AUGMENT_PATIENCE
from training.synthetic import make_folder

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def make(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def held_out_accuracy(artifact, folder) -> float:
    """The served model (model.tflite, as the function runs it) on images it never saw,
    prepared from its manifest as the function prepares an uploaded image."""
    from bench.defaults import held_out_images

    manifest = json.loads((artifact / "manifest.json").read_text())
    x, y = held_out_images(folder, InputSpec.from_manifest(manifest), manifest["labels"])
    predicted = Predictor.from_file(str(artifact / "model.tflite")).predict(x).argmax(axis=1)
    return float(np.mean(predicted == y))


def only_version(folder):
    (version,) = [p for p in folder.iterdir() if p.name.isdigit()]
    return version


def test_a_learnable_folder_trains_to_a_model_that_passes_its_gate(tmp_path):
    """Textures: four classes of 32x32 colour patterns, 150 images each; the job's defaults
    alone (the digits' old ones stopped at 5 epochs, near chance)."""
    folder = make_folder("textures", tmp_path / "textures", per_class=150, seed=0)
    held_out = make_folder("textures", tmp_path / "held-out", per_class=25, seed=1)
    artifacts = tmp_path / "artifacts"
    done = make("train", "NAME=textures", f"DATASET={folder}", f"ARTIFACTS={artifacts}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # what the job read and why it stopped, in its own words
    assert (
        f"dataset {folder}: 4 classes, 150 images each (checks, dots, rings, stripes); "
        "32x32 rgb (resize: stretch); split 480 train, 60 validation, 60 test" in out
    )
    assert (
        f"training cnn (augmentation: {AUGMENT}): at most 100 epochs, stopping after "
        f"{AUGMENT_PATIENCE} without a better" in out
    )
    assert "stopped after epoch" in out
    assert f"converged (no better validation loss for {AUGMENT_PATIENCE}" in out
    assert "gate: passed" in out
    artifact = only_version(artifacts / "textures")
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["evaluation"]["gate"]["passed"] is True
    stopped = manifest["model"]["stopped"]
    assert stopped["reason"] == "converged" and stopped["epochs"] > 10  # not the old 5
    assert manifest["dataset"]["per_class"] == dict.fromkeys(manifest["labels"], 150)
    assert manifest["model"]["augmentation"]["level"] == AUGMENT  # the default for folders
    assert held_out_accuracy(artifact, held_out) > 0.45  # chance: 0.25


def test_random_pixels_with_random_labels_are_refused_and_never_published(s3, s3_env, tmp_path):
    folder = make_folder("noise", tmp_path / "noise", per_class=60, seed=0)
    artifacts = tmp_path / "artifacts"
    done = make("train", "NAME=noise", f"DATASET={folder}", f"ARTIFACTS={artifacts}")
    assert done.returncode == 2  # make's own status for a recipe that failed (the job's: 3)
    assert "Error 3" in done.stderr
    assert "gate: FAILED" in done.stdout
    assert "does not lie above chance, 20.0% (5 classes of 6 test images each)" in done.stderr
    for option in ("more images per class", "EPOCHS=", "MAX_MINUTES=", "ARCH=", "FORCE=1"):
        assert option in done.stderr, option
    # the artifact is kept for its report, which says the same on top
    artifact = only_version(artifacts / "noise")
    assert 'id="gate-banner"' in (artifact / "report.html").read_text()

    published = make("publish", "NAME=noise", f"ARTIFACTS={artifacts}", f"BUCKET={s3_env}")
    assert published.returncode == 2 and "failed its gate" in published.stderr
    assert s3.list_objects_v2(Bucket=s3_env)["KeyCount"] == 0


def test_the_time_budget_ends_a_run_and_says_so(tmp_path):
    folder = make_folder("textures", tmp_path / "textures", per_class=40, seed=0)
    artifacts = tmp_path / "artifacts"
    # 0.01 minutes (0.6 s) are spent by reading the data and TensorFlow's start before the
    # first epoch ends, on any machine: 0.1 let a fast, idle one converge first (CI did)
    done = make("train", "NAME=quick", f"DATASET={folder}", f"ARTIFACTS={artifacts}",
                "MAX_MINUTES=0.01", "FORCE=1")  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "the time budget, MAX_MINUTES=0.01" in done.stdout
    stopped = json.loads((only_version(artifacts / "quick") / "manifest.json").read_text())
    assert stopped["model"]["stopped"]["reason"] == "budget"
