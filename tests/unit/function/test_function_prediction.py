"""prediction: (de)quantization with the tensors' own parameters, one invoke per batch, the fixture
model's known answers."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from mlcore.predictor import ModelMismatch, Predictor
from mlcore.tensors import dequantize, quantize
from prediction import classify
from tests.function_support import FIXTURE_DIR

MODEL_PATH = str(FIXTURE_DIR / "model.tflite")


@pytest.fixture(scope="module")
def digits():
    return np.load(FIXTURE_DIR / "digits.npz")


@pytest.fixture
def predictor(manifest):
    return Predictor.from_file(MODEL_PATH, manifest)


def test_quantize_uses_scale_and_zero_point_and_saturates():
    values = np.array([0.0, 1.0, 127.0, 255.0, 300.0, -5.0], dtype=np.float32)
    q = quantize(values, 1.0, -128, np.int8)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, -127, -1, 127, 127, -128]
    assert quantize(np.array([0.5, 0.26]), 0.5, 3, np.uint8).tolist() == [4, 4]  # round(v/scale)+zp


def test_dequantize_inverts_it():
    q = np.array([-128, 0, 127], dtype=np.int8)
    np.testing.assert_allclose(dequantize(q, 0.00390625, -128), [0.0, 0.5, 255 / 256])
    assert dequantize(q, 0.00390625, -128).dtype == np.float32


def test_float_tensors_pass_through():
    values = np.array([0.25, 7.0], dtype=np.float32)
    assert quantize(values, 0.0, 0, np.float32).tolist() == [0.25, 7.0]
    assert dequantize(values, 0.0, 0).tolist() == [0.25, 7.0]


def test_the_fixture_model_gives_its_recorded_answers_in_one_batch(predictor, digits):
    probabilities = predictor.predict(digits["x"].astype(np.float32))
    assert probabilities.shape == (len(digits["x"]), 10)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), digits["expected"])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=0.05)  # int8 softmax
    accuracy = float((probabilities.argmax(axis=1) == digits["y"]).mean())
    manifest = json.loads((FIXTURE_DIR / "manifest.json").read_text())
    assert accuracy == pytest.approx(manifest["evaluation"]["quantized"]["accuracy"], abs=0.01)


def test_changing_batch_sizes_give_the_same_answers(predictor, digits):
    x = digits["x"][:9].astype(np.float32)
    whole = predictor.predict(x)
    one_by_one = np.concatenate([predictor.predict(x[i : i + 1]) for i in range(9)])
    in_threes = np.concatenate([predictor.predict(x[i : i + 3]) for i in range(0, 9, 3)])
    np.testing.assert_array_equal(whole, one_by_one)
    np.testing.assert_array_equal(whole, in_threes)


def test_concurrent_calls_are_serialised(predictor, digits):
    x = digits["x"].astype(np.float32)
    sizes = [1, 5, 17, 2, 64, 3, 1, 9]
    expected = [predictor.predict(x[:n]) for n in sizes]
    results: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        for _ in range(20):
            results[i] = predictor.predict(x[: sizes[i]])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sizes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, want in enumerate(expected):
        np.testing.assert_array_equal(results[i], want)


@pytest.mark.parametrize(
    ("path", "value", "complaint"),
    [
        (("input", "dtype"), "float32", "input dtype"),
        (("input", "quantization", "scale"), 0.5, "input quantization"),
        (("output", "quantization", "zero_point"), 0, "output quantization"),
        (("input", "shape"), [-1, 32, 32], "input shape"),
        (("labels",), ["a", "b"], "labels"),
    ],
)
def test_a_manifest_that_disagrees_with_the_model_is_refused(manifest, path, value, complaint):
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ModelMismatch, match=complaint):
        Predictor.from_file(MODEL_PATH, manifest)


def test_signature_names_come_from_the_model(predictor):
    assert predictor.signature_input == "image"
    assert predictor.signature_output == "output_0"
    assert predictor.instance_shape == (28, 28, 1)


def test_classify_names_the_top_class():
    rows = classify(
        np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], dtype=np.float32), ["cat", "dog", "owl"]
    )
    assert [(r["label"], r["class_id"]) for r in rows] == [("dog", 1), ("cat", 0)]
    assert rows[1]["confidence"] == 0.5 and rows[1]["probabilities"] == [0.5, 0.25, 0.25]
    assert rows[0]["top"] == [
        {"label": "dog", "confidence": pytest.approx(0.7)},
        {"label": "owl", "confidence": pytest.approx(0.2)},
        {"label": "cat", "confidence": pytest.approx(0.1)},
    ]
    assert [t["label"] for t in rows[1]["top"]] == ["cat", "dog", "owl"]  # ties: lower id first


def test_classify_names_at_most_the_classes_there_are():
    (row,) = classify(np.array([[0.3, 0.7]], dtype=np.float32), ["no", "yes"])
    assert [t["label"] for t in row["top"]] == ["yes", "no"]
    assert row["top"][0]["confidence"] == row["confidence"]
