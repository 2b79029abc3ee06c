"""The TensorFlow Serving REST API's JSON shapes (tensorflow_serving/g3doc/api_rest.md).

    POST /v1/models/{name}[/versions/{version}]:predict  {"instances": ...} -> {"predictions": ...}
                                                          {"inputs": ...}    -> {"outputs": ...}
    GET  /v1/models/{name}[/versions/{version}]           GetModelStatusResponse
    GET  /v1/models/{name}[/versions/{version}]/metadata  GetModelMetadataResponse

Protobuf JSON mapping: int64 values (versions, dims) are strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from errors import ApiError

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
# curl -d (TF Serving's own examples) sends this Content-Type; TF Serving ignores it.
CURL_DEFAULT_MEDIA_TYPE = "application/x-www-form-urlencoded"


def check_model(
    name: str, version: str | None, served_name: str, served_version: int | None
) -> None:
    """404 unless the path names the served model (and, if given, its served version)."""
    if name != served_name:
        raise ApiError(
            "MODEL_NOT_FOUND",
            f"model '{name[:100]}' not found; this endpoint serves '{served_name}'",
        )
    if version is None or served_version is None:
        return
    if not version.isdigit() or int(version) != served_version:
        raise ApiError(
            "VERSION_NOT_FOUND",
            f"version '{version[:40]}' of '{served_name}' not found; "
            f"the version served is {served_version}",
        )


def predict_input(payload: dict[str, Any], input_name: str) -> tuple[str, Any]:
    """("instances", value) for the row format or ("inputs", value) for the columnar one.

    A model with one input may also be fed by name: instances [{"<input>": ...}, ...] or
    inputs {"<input>": ...}.
    """
    signature = payload.get("signature_name", DEFAULT_SIGNATURE)
    if signature != DEFAULT_SIGNATURE:
        shown = signature[:60] if isinstance(signature, str) else type(signature).__name__
        raise ApiError(
            "UNKNOWN_SIGNATURE",
            f"signature_name '{shown}' not found; this model has only '{DEFAULT_SIGNATURE}'",
        )
    if "instances" in payload and "inputs" in payload:
        raise ApiError(
            "AMBIGUOUS_INPUT",
            "send either 'instances' (row format) or 'inputs' (columnar), not both",
        )
    if "instances" in payload:
        instances = payload["instances"]
        if (
            isinstance(instances, list)
            and instances
            and all(isinstance(i, dict) and not _is_binary(i) for i in instances)
        ):
            instances = [_named(row, input_name, "instances") for row in instances]
        return "instances", instances
    if "inputs" in payload:
        inputs = payload["inputs"]
        if isinstance(inputs, dict) and not _is_binary(inputs):
            inputs = _named(inputs, input_name, "inputs")
        return "inputs", inputs
    raise ApiError(
        "MISSING_FIELD", "the body needs 'instances' (row format) or 'inputs' (columnar format)"
    )


def _is_binary(value: dict) -> bool:
    """{"b64": "..."}: TF Serving's binary value, not a named tensor."""
    return set(value) == {"b64"}


def _named(tensors: dict[str, Any], input_name: str, field: str) -> Any:
    if set(tensors) != {input_name}:
        raise ApiError(
            "INVALID_SHAPE",
            f"named tensors in '{field}' must have the one input of this model: '{input_name}'",
        )
    return tensors[input_name]


def predict_response(fmt: str, probabilities: np.ndarray) -> dict[str, Any]:
    """One output tensor, so its name is omitted: a list of rows of probabilities."""
    rows = probabilities.astype(np.float64).tolist()
    return {"predictions": rows} if fmt == "instances" else {"outputs": rows}


def model_status(version: int) -> dict[str, Any]:
    """GetModelStatusResponse: the one version this endpoint serves, AVAILABLE."""
    return {
        "model_version_status": [
            {
                "version": str(version),
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def _tensor_info(name: str, shape: list[int]) -> dict[str, Any]:
    return {
        "dtype": "DT_FLOAT",  # clients send and receive real values; (de)quantization is ours
        "tensor_shape": {
            "dim": [{"size": str(int(d)), "name": ""} for d in shape],
            "unknown_rank": False,
        },
        "name": name,
    }


def model_metadata(
    *,
    name: str,
    version: int,
    input_key: str,
    input_tensor: str,
    input_shape: list[int],
    output_key: str,
    output_tensor: str,
    output_shape: list[int],
    classifier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """GetModelMetadataResponse with the signature_def of the one serving signature, and our
    extension beside it, `classifier`: the class names and how an image becomes the input
    (what the page at GET / shows; TF Serving's clients read signature_def and ignore it)."""
    extension = {"classifier": classifier} if classifier is not None else {}
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            **extension,
            "signature_def": {
                "signature_def": {
                    DEFAULT_SIGNATURE: {
                        "inputs": {input_key: _tensor_info(input_tensor, input_shape)},
                        "outputs": {output_key: _tensor_info(output_tensor, output_shape)},
                        "method_name": PREDICT_METHOD,
                    }
                }
            },
        },
    }
