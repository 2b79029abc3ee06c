"""Training beyond one process, for real: tf.distribute's mirrored strategy in this process,
two MultiWorkerMirroredStrategy workers on loopback, and the SageMaker entry point in a
simulated SageMaker environment. Each artifact verifies, is published by
`python -m training publish --artifact` to S3 on loopback and served by the function's handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest
from PIL import Image

from local.processes import free_port, start, stop
from tests.conftest import EVENTS_DIR, ROOT
from training.cli import main

pytestmark = pytest.mark.integration

# what Keras' fit records with the schedule's ReduceLROnPlateau; the custom loop the same
HISTORY_KEYS = {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}


def check_artifact(folder):
    """The artifact verifies as the publisher and the function check it; returns its manifest
    and the held-out inputs with what the served model must answer for them."""
    from mlcore.predictor import Predictor
    from training.data import held_out_split
    from training.manifest import read_manifest, verify_files

    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    predictor = Predictor.from_file(str(folder / "model.tflite"), manifest)  # checks the specs
    x_test, y_test = held_out_split(manifest)
    predicted = predictor.predict(x_test).argmax(axis=1)
    assert manifest["evaluation"]["quantized"]["accuracy"] == pytest.approx(
        float(np.mean(predicted == y_test)), abs=1e-6
    )
    history = manifest["training"]["history"]
    assert set(history) == HISTORY_KEYS
    assert all(len(v) == manifest["model"]["epochs_trained"] for v in history.values())
    assert manifest["baseline"]["n"] == len(y_test)
    return manifest, x_test, predicted


def publish_and_serve(artifact, manifest, x, monkeypatch, s3_env, tmp_path, capsys, force=False):
    """`python -m training publish --artifact ARTIFACT` (`--force` for a model that failed its
    gate), then the function's handler in this process answers /predict for x; returns the class
    ids it answered."""
    from tests.function_support import function_configured, invoke, with_body

    command = ["publish", "--artifact", str(artifact), "--bucket", s3_env, "--prefix", "models"]
    command += ["--force"] if force else []
    assert main(command) == 0, capsys.readouterr().err
    assert (
        f"models/{manifest['name']}/{manifest['version']}/model.tflite" in capsys.readouterr().out
    )
    with function_configured(
        monkeypatch, tmp_path / "cache", BucketName=s3_env, ModelName=manifest["name"]
    ):
        event = json.loads((EVENTS_DIR / "predict-instances.json").read_text())
        answer = invoke(with_body(event, json.dumps({"instances": x.tolist()})))
    assert answer.status == 200, answer.body
    assert answer.body["model"] == {
        "name": manifest["name"],
        "version": manifest["version"],
        "role": "stable",
    }
    return [p["class_id"] for p in answer.body["predictions"]]


@pytest.mark.slow  # distributed training: 7 s
def test_mirrored_strategy_makes_an_artifact_that_verifies_and_serves(
    tmp_path, s3_env, monkeypatch, capsys
):
    artifacts = tmp_path / "artifacts"
    args = ["--epochs", "2", "--limit", "1000", "--artifacts", str(artifacts), "--version", "3000"]
    assert main(["train", "--distribute", "mirrored", *args]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2 (1 replicas)" in out and "n=500" in out
    folder = artifacts / "mnist" / "3000"
    manifest, x_test, predicted = check_artifact(folder)
    assert manifest["model"]["distribute"] == {"strategy": "mirrored", "workers": 1, "replicas": 1}
    assert manifest["evaluation"]["quantized"]["accuracy"] > 0.5
    served = publish_and_serve(folder, manifest, x_test[:40], monkeypatch, s3_env, tmp_path, capsys)
    assert served == predicted[:40].tolist()


@pytest.mark.slow
def test_two_workers_on_loopback_make_one_artifact_that_verifies_and_serves(
    tmp_path, s3_env, monkeypatch, capsys
):
    """Two processes, MultiWorkerMirroredStrategy over TF_CONFIG on free loopback ports; the
    chief (worker 0) writes the artifact, worker 1 writes nothing."""
    artifacts = tmp_path / "artifacts"
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    command = [sys.executable, "-m", "training", "train", "--distribute", "multi-worker"]
    command += ["--epochs", "2", "--limit", "1000", "--artifacts", str(artifacts)]
    workers, logs = [], [tmp_path / f"worker{i}.log" for i in range(2)]
    try:
        for index, log in enumerate(logs):
            task = {"type": "worker", "index": index}
            env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": task})}
            workers.append(start(command, log=log, env=env, cwd=ROOT))
        codes = [worker.wait(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            stop(worker)
    output = [log.read_text() for log in logs]
    assert codes == [0, 0], "\n".join(text[-3000:] for text in output)
    assert "epoch 2/2 (2 replicas)" in output[0] and "epoch 2/2 (2 replicas)" in output[1]
    assert "worker done" in output[1] and "worker done" not in output[0]
    (folder,) = (artifacts / "mnist").iterdir()  # one artifact: the chief's
    manifest, x_test, predicted = check_artifact(folder)
    assert manifest["model"]["distribute"] == {
        "strategy": "multi-worker",
        "workers": 2,
        "replicas": 2,
    }
    # both workers saw the same, agreed validation figures every epoch
    val_losses = [line for line in output[0].splitlines() if line.startswith("epoch ")]
    assert val_losses == [line for line in output[1].splitlines() if line.startswith("epoch ")]
    assert manifest["evaluation"]["quantized"]["accuracy"] > 0.5
    served = publish_and_serve(folder, manifest, x_test[:40], monkeypatch, s3_env, tmp_path, capsys)
    assert served == predicted[:40].tolist()


def simulated_sagemaker(root):
    """SageMaker's folders under `root`: a `training` channel holding one .npz, a `test` channel
    holding an image folder (PNG files in class folders), the model and output folders."""
    sample = np.load(ROOT / "training" / "data" / "mnist-sample.npz")
    x, y = sample["x"], sample["y"]
    training = root / "input" / "data" / "training"
    training.mkdir(parents=True)
    np.savez(training / "digits.npz", x=x[::3], y=y[::3])  # the sample is sorted by class
    test = root / "input" / "data" / "test"
    others = np.arange(1, len(y), 3)  # digits the training channel does not hold
    for i in [i for digit in range(10) for i in others[y[others] == digit][:6]]:
        (test / str(y[i])).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(test / str(y[i]) / f"{i}.png")
    return {
        "SM_CHANNEL_TRAINING": str(training),
        "SM_CHANNEL_TEST": str(test),
        "SM_MODEL_DIR": str(root / "model"),
        "SM_OUTPUT_DIR": str(root / "output"),
        "SM_HPS": json.dumps({"epochs": 3, "batch_size": 32, "version": 4000}),
    }


@pytest.mark.slow  # a whole training run: 11 s
def test_sagemaker_entry_point_writes_what_sagemaker_uploads_and_it_serves(
    tmp_path, s3_env, monkeypatch, capsys
):
    sm = simulated_sagemaker(tmp_path / "opt-ml")
    code_dir = tmp_path / "code"  # SageMaker runs the script from its own code folder
    code_dir.mkdir()
    script = ROOT / "training" / "sagemaker_entry.py"
    # SageMaker's TensorFlow estimator adds --model_dir; an argument wins over SM_HPS
    argv = ["--model_dir", "s3://bucket/job/model", "--epochs", "2"]
    done = subprocess.run(
        [sys.executable, str(script), *argv],
        env={**os.environ, **sm},
        cwd=code_dir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    model_dir = tmp_path / "opt-ml" / "model"
    names = sorted(p.name for p in model_dir.iterdir())
    assert {"manifest.json", "model.tflite", "model.keras", "report.html"} <= set(names)
    assert all((model_dir / name).is_file() for name in names)  # flat: no version folder
    assert not (tmp_path / "opt-ml" / "output" / "failure").exists()

    manifest, x_test, predicted = check_artifact(model_dir)
    assert manifest["version"] == 4000
    assert manifest["model"]["epochs_max"] == 2 and manifest["model"]["batch_size"] == 32
    dataset = manifest["dataset"]
    assert dataset["name"] == sm["SM_CHANNEL_TRAINING"] + "/digits.npz"
    assert dataset["test_set"]["name"] == sm["SM_CHANNEL_TEST"]
    assert manifest["evaluation"]["quantized"]["n"] == 60 == len(x_test)

    # SageMaker uploads SM_MODEL_DIR as model.tar.gz, the folder's files at its root
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in names:
            tar.add(model_dir / name, arcname=name)
    served = publish_and_serve(archive, manifest, x_test, monkeypatch, s3_env, tmp_path, capsys)
    assert served == predicted.tolist()
