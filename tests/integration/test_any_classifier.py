"""A user's own classifier end to end: an RGB image folder of named classes trained with the CNN,
and a Keras model trained outside the job (another input range) brought in with `convert`; both
int8, published to S3 on loopback and served through the local HTTPS API, images answered with
the class names."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import pytest
import requests
from PIL import Image

from tests.local_support import ROOT, local_api
from training.cli import main
from training.synthetic import CLASSES, make_shapes
from training.synthetic import shape as draw

pytestmark = pytest.mark.integration


def png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def predict(api, body: dict) -> dict:
    answer = requests.post(
        f"{api.url}/predict", json=body, headers={"x-api-key": api.key}, verify=api.ca, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes(tmp_path_factory.mktemp("data") / "shapes", per_class=150, size=32)


@pytest.mark.slow  # 18 s of training (20 epochs); the converted model below stays in make test
def test_an_rgb_image_folder_is_trained_published_and_served_with_its_class_names(
    shapes, s3_env, tmp_path, capsys
):
    artifacts = tmp_path / "artifacts"
    code = main(
        ["train", "--name", "shapes", "--dataset", str(shapes), "--architecture", "cnn",
         "--epochs", "20", "--batch-size", "32", "--patience", "4",
         "--artifacts", str(artifacts), "--version", "7",
         "--publish", "--bucket", s3_env, "--prefix", "models"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    manifest = json.loads((artifacts / "shapes" / "7" / "manifest.json").read_text())
    assert manifest["labels"] == sorted(CLASSES)
    assert manifest["input"]["shape"] == [-1, 32, 32, 3] and manifest["input"]["color"] == "rgb"
    assert manifest["input"]["preprocessing"] == {"policy": "stretch"}
    assert manifest["evaluation"]["quantized"]["accuracy"] > 0.8
    report = artifacts / "shapes" / "7" / "report.html"  # RGB images in its grid
    assert f"report {report}" in out
    report.unlink()
    assert main(["report", "--artifact", str(report.parent)]) == 0  # from the artifact alone
    assert f"report {report}" in capsys.readouterr().out and report.is_file()

    # `make events NAME=shapes`: the model's own events, from its manifest and test split
    made = subprocess.run(
        [sys.executable, "events/make_events.py", "--model", "--name", "shapes",
         "--artifacts", str(artifacts)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    events = artifacts / "shapes" / "7" / "events"
    expected = json.loads((events / "expected.json").read_text())
    assert expected["predict-image.json"]["labels"][0] in CLASSES
    image_event = json.loads((events / "predict-image.json").read_text())
    image_body = json.loads(base64.b64decode(image_event["body"]))

    published = {"bucket": s3_env, "prefix": "models", "name": "shapes", "version": 7}
    rng = np.random.default_rng(123)  # new drawings, never seen in training, other sizes
    shapes_drawn = [(shape, draw(shape, int(rng.integers(32, 96)), rng)) for shape in CLASSES * 8]
    with local_api(tmp_path, published) as api:
        body = predict(api, {"images": [png(image) for _, image in shapes_drawn]})
        instances = predict(api, {"instances": [np.asarray(shapes_drawn[0][1].resize((32, 32)))
                                                .tolist()]})  # fmt: skip
        from_event = predict(api, image_body)
    assert [p["label"] for p in from_event["predictions"]] == expected["predict-image.json"][
        "labels"
    ]
    labels = [p["label"] for p in body["predictions"]]
    assert set(labels) <= set(CLASSES)
    right = sum(label == shape for label, (shape, _) in zip(labels, shapes_drawn, strict=True))
    assert right / len(labels) > 0.7  # chance is 1/3
    assert body["model"] == {"name": "shapes", "version": 7, "role": "stable"}
    assert instances["predictions"][0]["label"] in CLASSES


def test_a_keras_model_trained_elsewhere_is_converted_published_and_served(
    shapes, s3_env, tmp_path, capsys
):
    """Trained outside the job on inputs in [-1, 1], with logits out: `convert` puts the
    scaling and a softmax inside the graph, and the served answers follow the float model."""
    import keras

    from training.data import load_dataset

    dataset = load_dataset(str(shapes))
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))  # logits
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    scaled = dataset.x.astype(np.float32) / 127.5 - 1.0
    model.fit(scaled, dataset.y, epochs=6, batch_size=32, verbose=0)
    model.save(tmp_path / "mine.keras")

    artifacts = tmp_path / "artifacts"
    code = main(
        ["convert", "--name", "mine", "--model", str(tmp_path / "mine.keras"),
         "--dataset", str(shapes), "--input-range=-1,1", "--artifacts", str(artifacts),
         "--version", "3", "--publish", "--bucket", s3_env, "--prefix", "models"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "softmax was appended" in out
    assert f"report {artifacts / 'mine' / '3' / 'report.html'}" in out
    manifest = json.loads((artifacts / "mine" / "3" / "manifest.json").read_text())
    assert manifest["model"]["input_range"] == [-1.0, 1.0] and manifest["model"]["softmax_appended"]
    assert manifest["labels"] == sorted(CLASSES)
    # make convert records the drift baseline too: colour inputs, the shapes' own class names
    baseline = manifest["baseline"]
    assert list(baseline["predicted_share"]) == sorted(CLASSES)
    assert baseline["n"] == manifest["evaluation"]["quantized"]["n"]
    assert len(baseline["input"]["mean_intensity"]) == 3

    published = {"bucket": s3_env, "prefix": "models", "name": "mine", "version": 3}
    x = dataset.x[:40]
    with local_api(tmp_path, published) as api:
        body = predict(api, {"instances": x.tolist()})
    served = [p["class_id"] for p in body["predictions"]]
    float_model = model.predict(x.astype(np.float32) / 127.5 - 1.0, verbose=0).argmax(axis=1)
    assert np.mean(np.array(served) == float_model) >= 0.9
    np.testing.assert_allclose(
        [sum(p["probabilities"]) for p in body["predictions"]], 1.0, atol=0.02
    )


def test_a_model_at_chance_is_refused_and_never_published(shapes, s3_env, s3, tmp_path, capsys):
    """A model that answers one class for everything (its last layer zero: equal probabilities,
    so always the first class) scores the share of that class, 1/3: its interval does not lie
    above chance. `convert` exits 3 with what to try; nothing reaches the registry unless
    FORCE=1 is given both when it is made and when it is published."""
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer="zeros")(x)
    keras.Model(inputs, outputs).save(tmp_path / "constant.keras")

    artifacts = tmp_path / "artifacts"
    registry = ["--bucket", s3_env, "--prefix", "models"]
    convert = ["convert", "--name", "constant", "--model", str(tmp_path / "constant.keras"),
               "--dataset", str(shapes), "--artifacts", str(artifacts)]  # fmt: skip
    assert main([*convert, "--version", "1", "--publish", *registry]) == 3
    out, err = capsys.readouterr()
    assert "dataset " + str(shapes) + ": 3 classes, 150 images each" in out
    assert "gate: FAILED" in out
    assert "does not lie above chance, 33.3% (3 classes of 15 test images each)" in err
    assert "INPUT_RANGE" in err and "FORCE=1" in err
    assert s3.list_objects_v2(Bucket=s3_env).get("KeyCount") == 0
    assert main(["publish", "--artifact", str(artifacts / "constant" / "1"), *registry]) == 2
    assert "failed its gate" in capsys.readouterr().err
    assert s3.list_objects_v2(Bucket=s3_env).get("KeyCount") == 0

    # FORCE=1 keeps it (exit 0, the manifest says so) and publishes it, said on the way
    assert main([*convert, "--version", "2", "--force", "--publish", *registry]) == 0
    out = capsys.readouterr().out
    assert "gate: FAILED, kept with FORCE=1" in out and "models/constant/2/model.tflite" in out
    manifest = json.loads((artifacts / "constant" / "2" / "manifest.json").read_text())
    assert manifest["evaluation"]["gate"]["forced"] is True
