"""Pretrained backbones end to end, for real: `make train ARCH=mobilenet` with `WEIGHTS=<file>`
(a weights file this test makes and saves, standing in for ImageNet's, which cannot be
downloaded here) and with `WEIGHTS=none` trains (augmented), converts to int8, passes through
`make publish` to S3 on loopback, and the function's handler serves it images as users send
them; the same two phases in the tf.distribute loop and the SageMaker entry point (its weights
channel). Whole training runs: `make test-slow`."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import EVENTS_DIR, ROOT
from training.cli import main
from training.synthetic import make_folder

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """MobileNetV3-Small as keras.applications builds it without its top, at 224x224 (the size
    its ImageNet weights are for), its random weights saved as a user saves pretrained ones."""
    import keras

    path = tmp_path_factory.mktemp("weights") / "mobilenet.weights.h5"
    keras.utils.set_random_seed(3)
    keras.applications.MobileNetV3Small(
        input_shape=(224, 224, 3), include_top=False, weights=None, pooling="avg"
    ).save_weights(path)
    return path


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """3 classes of 32x32 colour shapes, 40 per class, and 5 more per class held out."""
    root = tmp_path_factory.mktemp("shapes")
    return make_folder("shapes", root / "train", 40, seed=0), make_folder(
        "shapes", root / "held-out", 5, seed=1
    )


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def png(path) -> str:
    with Image.open(path) as image, io.BytesIO() as out:
        image.save(out, "PNG")
        return base64.b64encode(out.getvalue()).decode()


def serve_images(folder, artifact, manifest, monkeypatch, s3_env, tmp_path) -> tuple[list, list]:
    """The function's handler, the model on S3 on loopback, asked about the held-out PNGs as
    users send them; returns its answers and what the artifact's model.tflite answers for the
    same images prepared from the manifest."""
    from bench.defaults import held_out_images
    from mlcore.images import InputSpec
    from mlcore.predictor import Predictor
    from tests.function_support import function_configured, invoke, with_body

    paths = sorted(folder.glob("*/*.png"))
    with function_configured(
        monkeypatch, tmp_path / "cache", BucketName=s3_env, ModelName=manifest["name"]
    ):
        event = json.loads((EVENTS_DIR / "predict-instances.json").read_text())
        answer = invoke(with_body(event, json.dumps({"images": [png(p) for p in paths]})))
    assert answer.status == 200, answer.body
    assert answer.body["model"]["version"] == manifest["version"]
    x, _ = held_out_images(folder, InputSpec.from_manifest(manifest), manifest["labels"])
    return [p["class_id"] for p in answer.body["predictions"]], list(
        Predictor.from_file(str(artifact / "model.tflite")).predict(x).argmax(axis=1)
    )


@pytest.mark.parametrize("weights", ["file", "none"])
def test_make_train_with_a_backbone_converts_publishes_and_serves(
    weights, weights_file, shapes, s3_env, monkeypatch, tmp_path
):
    train_folder, held_out = shapes
    artifacts = tmp_path / "artifacts"
    given = str(weights_file) if weights == "file" else "none"
    done = make(
        "train", f"NAME=shapes-{weights}", f"DATASET={train_folder}", f"ARTIFACTS={artifacts}",
        "ARCH=mobilenet", f"WEIGHTS={given}", "AUGMENT=light", "EPOCHS=2", "FORCE=1",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (artifact,) = (artifacts / f"shapes-{weights}").iterdir()
    manifest = json.loads((artifact / "manifest.json").read_text())
    about = manifest["model"]
    assert about["architecture"] == "mobilenet" and about["augmentation"]["level"] == "light"
    assert manifest["input"]["shape"] == [-1, 32, 32, 3]  # served: the data's size, 0..255
    assert manifest["input"]["dtype"] == "int8" and manifest["quantization"]["mode"] == "int8"
    gate = manifest["evaluation"]["gate"]
    assert {c["name"] for c in gate["checks"]} == {"above_chance", "quantization"}  # as any model
    if weights == "file":
        assert about["backbone"]["weights"]["file"] == "mobilenet.weights.h5"
        assert about["backbone"]["input_size"] == [224, 224]
        assert [p["name"] for p in about["stopped"]["phases"]] == ["head", "fine_tune"]
        rates = manifest["training"]["history"]["learning_rate"]
        assert rates[:2] == [0.001, 0.001] and rates[2:] == [0.0001, 0.0001]
        assert "weights: " + given + ", seen at 224x224" in done.stdout
        assert "2 with the backbone frozen, 2 fine-tuning" in done.stdout
    else:
        assert about["backbone"]["weights"] == "none"
        assert about["backbone"]["input_size"] == [32, 32]
        assert "phases" not in about["stopped"] and about["epochs_trained"] == 2

    published = make(
        "publish", f"NAME=shapes-{weights}", f"ARTIFACTS={artifacts}", f"BUCKET={s3_env}",
        "FORCE=1",  # two epochs from random features may not pass the gate: the path is the point
    )  # fmt: skip
    assert published.returncode == 0, published.stdout[-3000:] + published.stderr[-3000:]
    served, expected = serve_images(held_out, artifact, manifest, monkeypatch, s3_env, tmp_path)
    assert served == expected and len(served) == 15


def test_the_distributed_loop_trains_a_pretrained_backbone_in_two_phases(
    weights_file, shapes, s3_env, monkeypatch, tmp_path, capsys
):
    from tests.integration.test_distributed_training import check_artifact, publish_and_serve

    train_folder, _ = shapes
    artifacts = tmp_path / "artifacts"
    args = ["--name", "shapes", "--dataset", str(train_folder), "--artifacts", str(artifacts)]
    args += ["--architecture", "mobilenet", "--weights", str(weights_file), "--epochs", "2"]
    code = main(["train", "--distribute", "mirrored", "--augment", "light", "--force", *args])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "epoch 2/2 (1 replicas, head)" in out and "epoch 2/2 (1 replicas, fine_tune)" in out
    (folder,) = (artifacts / "shapes").iterdir()
    manifest, x_test, predicted = check_artifact(folder)
    phases = manifest["model"]["stopped"]["phases"]
    assert [(p["name"], p["epochs"]) for p in phases] == [("head", 2), ("fine_tune", 2)]
    assert manifest["training"]["history"]["learning_rate"][2:] == [0.0001, 0.0001]
    # two epochs from random "pretrained" features may not pass the gate: the path is the point
    served = publish_and_serve(
        folder, manifest, x_test, monkeypatch, s3_env, tmp_path, capsys, force=True
    )
    assert served == predicted.tolist()


def test_the_sagemaker_entry_point_reads_the_weights_channel(weights_file, shapes, tmp_path):
    train_folder, _ = shapes
    channel = tmp_path / "opt-ml" / "input" / "data" / "weights"
    channel.mkdir(parents=True)
    (channel / weights_file.name).write_bytes(weights_file.read_bytes())
    sm = {
        "SM_CHANNEL_TRAINING": str(train_folder),
        "SM_CHANNEL_WEIGHTS": str(channel),
        "SM_MODEL_DIR": str(tmp_path / "opt-ml" / "model"),
        "SM_OUTPUT_DIR": str(tmp_path / "opt-ml" / "output"),
        "SM_HPS": json.dumps({"architecture": "mobilenet", "epochs": 1, "force": 1}),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "training" / "sagemaker_entry.py")],
        env={**os.environ, **sm, "TF_CPP_MIN_LOG_LEVEL": "2"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = json.loads((tmp_path / "opt-ml" / "model" / "manifest.json").read_text())
    backbone = manifest["model"]["backbone"]
    assert backbone["weights"]["file"] == weights_file.name
    assert backbone["input_size"] == [224, 224]
    assert [p["name"] for p in manifest["model"]["stopped"]["phases"]] == ["head", "fine_tune"]
    assert np.isfinite(manifest["evaluation"]["quantized"]["accuracy"])
