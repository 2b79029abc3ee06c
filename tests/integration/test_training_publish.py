"""The training job for real: TensorFlow training, int8 conversion, LiteRT evaluation, and
publication to a real S3-protocol server on loopback."""

import base64
import hashlib
import json
import subprocess

import numpy as np
import pytest

from tests.conftest import EVENTS_DIR, FIXTURE_DIR, ROOT
from training import convert as convert_module
from training.cli import main

pytestmark = pytest.mark.integration

QUICK = ["--epochs", "2", "--limit", "2000"]


def keys(s3, bucket):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_train_quantize_verify_publish_and_read_back(s3, s3_env, tmp_path, capsys):
    artifacts = tmp_path / "artifacts"
    code = main(
        [
            "train",
            *QUICK,
            "--artifacts",
            str(artifacts),
            "--version",
            "1000",
            "--publish",
            "--bucket",
            s3_env,
            "--prefix",
            "models",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "float" in out and "int8" in out and "bytes" in out

    manifest = json.loads((artifacts / "mnist/1000/manifest.json").read_text())
    assert manifest["input"]["dtype"] == "int8" and manifest["output"]["dtype"] == "int8"
    # the default CNN: ~19 KB int8 against ~55 KB float32; its fixed graph overhead keeps the
    # ratio above the MLP's 0.27 (whose bytes are nearly all weights; bench measures both)
    assert manifest["model"]["architecture"] == "cnn"
    assert manifest["sizes"]["tflite_bytes"] <= 0.40 * manifest["sizes"]["float32_tflite_bytes"]
    evaluation = manifest["evaluation"]
    assert evaluation["accuracy_drop_points"] <= 1.0
    quantized = evaluation["quantized"]
    assert quantized["accuracy"] > 0.8 and quantized["n"] == 500
    low, high = quantized["ci95"]
    assert low < quantized["accuracy"] < high and 0.03 < high - low < 0.08  # ~4 points at n=500
    assert sum(map(sum, quantized["confusion"])) == 500
    assert [c["n"] for c in quantized["per_class"].values()] == [50] * 10
    history = manifest["training"]["history"]
    assert (
        len(history["loss"]) == len(history["val_accuracy"]) == manifest["model"]["epochs_trained"]
    )
    assert "n=500" in out  # every accuracy printed with its interval and n
    # the baseline is the gate's own evaluation as served: its predicted classes are the
    # columns of the quantized confusion matrix, its inputs the held-out digits
    baseline = manifest["baseline"]
    assert baseline["n"] == 500 and list(baseline["predicted_share"]) == manifest["labels"]
    columns = np.array(quantized["confusion"]).sum(axis=0) / 500
    assert list(baseline["predicted_share"].values()) == pytest.approx(columns.tolist())
    assert sum(baseline["confidence"]["histogram"]["counts"]) == 500
    assert 1 / 10 < baseline["confidence"]["mean"] <= 1
    from mlcore.stats import input_summary
    from training.data import held_out_split

    assert baseline["input"] == input_summary(held_out_split(manifest)[0])
    assert (artifacts / "mnist/1000/model.keras").is_file()
    # the report beside the model; `make report` remakes the same page from the artifact alone
    report = artifacts / "mnist/1000/report.html"
    assert f"report {report}" in out
    written = report.read_bytes()
    report.unlink()
    remade = subprocess.run(
        ["make", "--no-print-directory", "report", f"ARTIFACTS={artifacts}", "VERSION=1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert remade.returncode == 0, remade.stderr
    assert f"report {report}" in remade.stdout and report.read_bytes() == written

    assert keys(s3, s3_env) == [
        "models/mnist/1000/manifest.json",
        "models/mnist/1000/model.tflite",
        "models/mnist/audit/pointer/000000000001.json",  # the pointer change's record
        "models/mnist/latest.json",
    ]
    obj = s3.get_object(Bucket=s3_env, Key="models/mnist/1000/model.tflite", ChecksumMode="ENABLED")
    body = obj["Body"].read()
    assert hashlib.sha256(body).hexdigest() == manifest["files"]["model.tflite"]["sha256"]
    assert obj["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert obj["ServerSideEncryption"] == "AES256"
    published = json.loads(
        s3.get_object(Bucket=s3_env, Key="models/mnist/1000/manifest.json")["Body"].read()
    )
    assert published == manifest
    pointer = json.loads(
        s3.get_object(Bucket=s3_env, Key="models/mnist/latest.json")["Body"].read()
    )
    assert pointer["version"] == 1000
    assert pointer["manifest_key"] == "models/mnist/1000/manifest.json"

    # The same version again completes without writing anything: publishing is idempotent.
    assert (
        main(
            [
                "publish",
                "--artifacts",
                str(artifacts),
                "--version",
                "1000",
                "--bucket",
                s3_env,
                "--prefix",
                "models",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "model.tflite, manifest.json already stored with the same sha256" in out
    assert "pointer   unchanged: it already serves version 1000" in out
    assert s3.get_object(Bucket=s3_env, Key="models/mnist/1000/model.tflite")["Body"].read() == body


def test_a_failed_quantization_gate_keeps_the_artifact_but_publishes_nothing(
    s3, s3_env, tmp_path, monkeypatch, capsys
):
    # Calibrating on blank images gives the int8 input a range of [0, 0]: every real digit
    # saturates, accuracy collapses, and the gate must stop the job.
    def blank_calibration(x, size, seed):
        return lambda: ([np.zeros((1, *x.shape[1:]), np.float32)] for _ in range(size))

    monkeypatch.setattr(convert_module, "representative_dataset", blank_calibration)
    registry = ["--bucket", s3_env, "--prefix", "models"]
    code = main(["train", *QUICK, "--artifacts", str(tmp_path), "--version", "9", "--publish",
                 *registry])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3
    assert "gate: FAILED" in out
    assert "failed its gate, so it will not be published" in err
    # the options that change a quantization gate's outcome, by their make and CLI names
    for option in ("MAX_ACCURACY_DROP", "--max-accuracy-drop", "TEST_FRACTION (now 0.1)",
                   "TEST_DATASET", "QUANTIZE=float16", "FORCE=1"):  # fmt: skip
        assert option in err, option
    assert keys(s3, s3_env) == []
    # the artifact stays, for its report: the verdict in its manifest, a banner on its page
    artifact = tmp_path / "mnist" / "9"
    gate = json.loads((artifact / "manifest.json").read_text())["evaluation"]["gate"]
    assert gate["passed"] is False and gate["forced"] is False
    # (the collapse takes the int8 model to chance, so that check fails with it)
    assert "quantization" in [c["name"] for c in gate["checks"] if not c["passed"]]
    assert 'id="gate-banner"' in (artifact / "report.html").read_text()

    # make publish refuses it; FORCE=1 publishes it all the same
    publish = ["publish", "--artifact", str(artifact), *registry]
    assert main(publish) == 2
    assert "failed its gate" in capsys.readouterr().err and keys(s3, s3_env) == []
    assert main([*publish, "--force"]) == 0
    assert "models/mnist/9/model.tflite" in keys(s3, s3_env)


def test_older_version_does_not_move_the_pointer_back(s3, s3_env, published_model, tmp_path):
    from training.publish import publish

    older = tmp_path / "mnist" / "5"
    older.mkdir(parents=True)
    (older / "model.tflite").write_bytes((FIXTURE_DIR / "model.tflite").read_bytes())
    (older / "manifest.json").write_text(json.dumps({**published_model["manifest"], "version": 5}))
    uris = publish(older, s3_env, "models")
    assert uris["pointer"] is None and uris["served"] == published_model["version"]
    assert keys(s3, s3_env).count("models/mnist/5/model.tflite") == 1
    pointer = json.loads(
        s3.get_object(Bucket=s3_env, Key="models/mnist/latest.json")["Body"].read()
    )
    assert pointer["version"] == published_model["version"]


def test_unreachable_endpoint_and_missing_bucket_are_clear_errors(
    monkeypatch, tmp_path, capsys, s3_env
):
    artifact = (
        tmp_path / "mnist" / str(json.loads((FIXTURE_DIR / "manifest.json").read_text())["version"])
    )
    artifact.mkdir(parents=True)
    for name in ("model.tflite", "manifest.json"):
        (artifact / name).write_bytes((FIXTURE_DIR / name).read_bytes())
    args = ["publish", "--artifacts", str(tmp_path), "--prefix", "models"]

    assert main([*args, "--bucket", "no-such-bucket"]) == 2
    assert "bucket 'no-such-bucket' does not exist" in capsys.readouterr().err

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main([*args, "--bucket", s3_env]) == 2
    assert "cannot reach the S3 endpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick Keras model on the sample, to package in every quantization mode."""
    from training.config import TrainConfig
    from training.data import load_dataset, make_splits
    from training.model import train

    config = TrainConfig(epochs=1, limit=1000, artifacts=tmp_path_factory.mktemp("artifacts"))
    dataset = load_dataset(config.dataset)
    splits = make_splits(dataset, 0.1, 0.1, config.seed, config.limit)
    train_and_validation = (splits.x_train, splits.y_train, splits.x_val, splits.y_val)
    model, history, _ = train(config, *train_and_validation, 10)
    return config, dataset, splits, model, history


# int8 (the default) in make test; the other modes, 5 s each, in make test-slow
QUANTIZE_MODES = ["int8", "float16", "dynamic", "none"]
MODES = [("int8", "int8")] + [
    pytest.param(mode, "float32", marks=pytest.mark.slow) for mode in QUANTIZE_MODES[1:]
]


@pytest.mark.parametrize(("mode", "dtype"), MODES)
def test_every_quantization_mode_is_gated_through_the_predictor_and_served(
    trained, mode, dtype, s3_env, monkeypatch, tmp_path
):
    """The gate's accuracy is the one the function's predictor gives; the function serves the
    model of every mode and answers what that predictor answers."""
    import dataclasses

    from mlcore.predictor import Predictor
    from tests.function_support import function_configured, invoke, with_body
    from training.data import held_out_split
    from training.pipeline import package
    from training.publish import publish

    config, dataset, splits, model, history = trained
    config = dataclasses.replace(config, quantize=mode, version=2000 + QUANTIZE_MODES.index(mode))
    about = {"architecture": config.architecture}  # package() takes what to say of the model
    result = package(model, dataset, splits, config, about, history, started=0.0)
    manifest = result.manifest
    assert manifest["input"]["dtype"] == dtype and manifest["quantization"]["mode"] == mode
    assert (result.artifact_dir / "report.html").is_file()  # its grid checked against the manifest

    x_test, y_test = held_out_split(manifest)
    predictor = Predictor.from_file(str(result.artifact_dir / "model.tflite"), manifest)
    served_labels = predictor.predict(x_test).argmax(axis=1)
    accuracy = float(np.mean(served_labels == y_test))
    assert manifest["evaluation"]["quantized"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)

    publish(result.artifact_dir, s3_env, "models")
    with function_configured(monkeypatch, tmp_path / "cache", BucketName=s3_env):
        event = json.loads((EVENTS_DIR / "predict-instances.json").read_text())
        answer = invoke(with_body(event, json.dumps({"instances": x_test[:50].tolist()})))
    assert answer.status == 200, answer.body
    assert answer.body["model"]["version"] == config.version
    assert [p["class_id"] for p in answer.body["predictions"]] == served_labels[:50].tolist()
