"""tfserving: the TensorFlow Serving REST API's request and response shapes (api_rest.md)."""

from __future__ import annotations

import numpy as np
import pytest

import tfserving
from errors import ApiError
from mlcore.signatures import Signature, TensorSpec

IMAGE = ["image"]
PAIR = ["context", "features"]


def test_row_format_instances():
    assert tfserving.predict_input({"instances": [[1]]}, IMAGE) == ("instances", {"image": [[1]]})


def test_columnar_format_inputs():
    assert tfserving.predict_input({"inputs": [[1]], "signature_name": ""}, IMAGE) == (
        "inputs",
        {"image": [[1]]},
    )


def test_named_input_in_either_format():
    assert tfserving.predict_input({"instances": [{"image": [1]}, {"image": [2]}]}, IMAGE) == (
        "instances",
        {"image": [[1], [2]]},
    )
    assert tfserving.predict_input({"inputs": {"image": [[1]]}}, IMAGE) == (
        "inputs",
        {"image": [[1]]},
    )


def test_several_named_inputs_in_either_format():
    rows = [{"context": [1], "features": [2, 3]}, {"features": [4, 5], "context": [6]}]
    assert tfserving.predict_input({"instances": rows}, PAIR) == (
        "instances",
        {"context": [[1], [6]], "features": [[2, 3], [4, 5]]},
    )
    columns = {"context": [[1]], "features": [[2, 3]]}
    assert tfserving.predict_input({"inputs": columns}, PAIR) == ("inputs", columns)


@pytest.mark.parametrize(
    ("payload", "names", "code"),
    [
        ({"instances": [[1]], "inputs": [[1]]}, IMAGE, "AMBIGUOUS_INPUT"),
        ({"examples": [{}]}, IMAGE, "MISSING_FIELD"),
        ({"instances": [{"pixels": [1]}]}, IMAGE, "UNKNOWN_INPUT"),
        ({"inputs": {"image": [[1]], "extra": [1]}}, IMAGE, "UNKNOWN_INPUT"),
        ({"instances": [[1]]}, PAIR, "MISSING_INPUT"),  # several inputs need their names
        ({"inputs": [[1]]}, PAIR, "MISSING_INPUT"),
        ({"instances": [{"context": [1]}]}, PAIR, "MISSING_INPUT"),
    ],
)
def test_bad_requests_name_the_inputs(payload, names, code):
    with pytest.raises(ApiError) as raised:
        tfserving.predict_input(payload, names)
    assert raised.value.code == code and raised.value.status == 400
    if code in ("UNKNOWN_INPUT", "MISSING_INPUT"):
        assert all(name in raised.value.message for name in names)


@pytest.mark.parametrize(
    ("payload", "chosen"),
    [
        ({}, "serving_default"),
        ({"signature_name": ""}, "serving_default"),
        ({"signature_name": "encode"}, "encode"),
    ],
)
def test_an_empty_signature_name_means_the_default_one(payload, chosen):
    signatures = {"serving_default": None, "encode": None}
    assert tfserving.signature_name(payload, signatures, "serving_default") == chosen


@pytest.mark.parametrize("name", ["predict_images", 7, None])
def test_an_unknown_signature_names_the_signatures(name):
    with pytest.raises(ApiError) as raised:
        tfserving.signature_name(
            {"signature_name": name}, {"serving_default": None}, "serving_default"
        )
    assert raised.value.code == "UNKNOWN_SIGNATURE" and "serving_default" in raised.value.message


def test_one_output_is_answered_without_its_name():
    probabilities = np.array([[0.25, 0.75]], dtype=np.float32)
    outputs = {"output_0": probabilities}
    assert tfserving.predict_response("instances", outputs) == {"predictions": [[0.25, 0.75]]}
    assert tfserving.predict_response("inputs", outputs) == {"outputs": [[0.25, 0.75]]}


def test_several_outputs_are_answered_by_name_per_row_or_per_tensor():
    outputs = {"score": np.array([[0.5], [1.0]]), "count": np.array([3, 4], np.int32)}
    assert tfserving.predict_response("instances", outputs) == {
        "predictions": [{"score": [0.5], "count": 3}, {"score": [1.0], "count": 4}]
    }
    assert tfserving.predict_response("inputs", outputs) == {
        "outputs": {"score": [[0.5], [1.0]], "count": [3, 4]}
    }
    with pytest.raises(ApiError) as raised:  # no shared first dimension: no rows
        tfserving.predict_response("instances", {"a": np.zeros((2, 1)), "b": np.zeros((3,))})
    assert raised.value.code == "INVALID_SHAPE" and "columnar" in raised.value.message


def test_status_is_a_get_model_status_response():
    # the exact JSON of api_rest.md's example, for our version; a loading canary beside it
    assert tfserving.model_status(
        [
            {"version": 123, "state": "AVAILABLE"},
            {"version": 124, "state": "LOADING", "error": "still loading"},
        ]
    ) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            },
            {
                "version": "124",
                "state": "LOADING",
                "status": {"error_code": "UNAVAILABLE", "error_message": "still loading"},
            },
        ]
    }


def test_metadata_is_a_get_model_metadata_response():
    image = TensorSpec(
        "image", "serving_default_image:0", "int8", (-1, 28, 28), 1.0, -128, (0.0, 255.0)
    )
    output = TensorSpec("output_0", "StatefulPartitionedCall:0", "int8", (-1, 10), 1 / 256, -128)
    count = TensorSpec("count", "PartitionedCall:0", "int32", (-1,))
    signatures = {
        "serving_default": Signature("serving_default", (image,), (output,)),
        "counts": Signature("counts", (image,), (count,)),
    }
    expected = {"serving_default": {"image": {"value_range": [0, 255], "preprocessing": None}}}
    metadata = tfserving.model_metadata(
        name="mnist", version=7, signatures=signatures, expected_inputs=expected
    )
    assert metadata["model_spec"] == {"name": "mnist", "signature_name": "", "version": "7"}
    assert metadata["metadata"]["expected_inputs"] == expected
    defs = metadata["metadata"]["signature_def"]["signature_def"]
    signature = defs["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["image"] == {
        "dtype": "DT_FLOAT",  # quantized: clients send real values
        "tensor_shape": {
            "dim": [
                {"size": "-1", "name": ""},
                {"size": "28", "name": ""},
                {"size": "28", "name": ""},
            ],
            "unknown_rank": False,
        },
        "name": "serving_default_image:0",
    }
    assert [d["size"] for d in signature["outputs"]["output_0"]["tensor_shape"]["dim"]] == [
        "-1",
        "10",
    ]
    assert defs["counts"]["outputs"]["count"]["dtype"] == "DT_INT32"  # not quantized: its own
