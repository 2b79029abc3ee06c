"""tfserving: the TensorFlow Serving REST API's request and response shapes (api_rest.md)."""

from __future__ import annotations

import numpy as np
import pytest

import tfserving
from errors import ApiError


def test_row_format_instances():
    assert tfserving.predict_input({"instances": [[1]]}, "image") == ("instances", [[1]])


def test_columnar_format_inputs():
    assert tfserving.predict_input(
        {"inputs": [[1]], "signature_name": "serving_default"}, "image"
    ) == ("inputs", [[1]])


def test_named_input_in_either_format():
    assert tfserving.predict_input({"instances": [{"image": [1]}, {"image": [2]}]}, "image") == (
        "instances",
        [[1], [2]],
    )
    assert tfserving.predict_input({"inputs": {"image": [[1]]}}, "image") == ("inputs", [[1]])


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"instances": [[1]], "inputs": [[1]]}, "AMBIGUOUS_INPUT"),
        ({"examples": [{}]}, "MISSING_FIELD"),
        ({"signature_name": "predict_images", "instances": [[1]]}, "UNKNOWN_SIGNATURE"),
        ({"signature_name": 7, "instances": [[1]]}, "UNKNOWN_SIGNATURE"),
        ({"instances": [{"pixels": [1]}]}, "INVALID_SHAPE"),
        ({"inputs": {"image": [[1]], "extra": [1]}}, "INVALID_SHAPE"),
    ],
)
def test_bad_requests(payload, code):
    with pytest.raises(ApiError) as raised:
        tfserving.predict_input(payload, "image")
    assert raised.value.code == code and raised.value.status == 400


def test_responses_name_no_tensor_for_a_single_output():
    probabilities = np.array([[0.25, 0.75]], dtype=np.float32)
    assert tfserving.predict_response("instances", probabilities) == {"predictions": [[0.25, 0.75]]}
    assert tfserving.predict_response("inputs", probabilities) == {"outputs": [[0.25, 0.75]]}


def test_status_is_a_get_model_status_response():
    # the exact JSON of api_rest.md's example, for our version
    assert tfserving.model_status(123) == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_metadata_is_a_get_model_metadata_response():
    metadata = tfserving.model_metadata(
        name="mnist",
        version=7,
        input_key="image",
        input_tensor="serving_default_image:0",
        input_shape=[-1, 28, 28],
        output_key="output_0",
        output_tensor="StatefulPartitionedCall:0",
        output_shape=[-1, 10],
    )
    assert metadata["model_spec"] == {"name": "mnist", "signature_name": "", "version": "7"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["image"] == {
        "dtype": "DT_FLOAT",
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


def test_model_and_version_must_be_the_served_ones():
    tfserving.check_model("mnist", None, "mnist", 5)
    tfserving.check_model("mnist", "5", "mnist", 5)
    for name, version, code in [
        ("fashion", None, "MODEL_NOT_FOUND"),
        ("mnist", "4", "VERSION_NOT_FOUND"),
        ("mnist", "five", "VERSION_NOT_FOUND"),
    ]:
        with pytest.raises(ApiError) as raised:
            tfserving.check_model(name, version, "mnist", 5)
        assert (raised.value.code, raised.value.status) == (code, 404)
        assert "mnist" in raised.value.message  # says what is served
