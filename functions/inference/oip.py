"""The Open Inference Protocol (v2, KServe's and Triton's "predict protocol version 2") over
REST: its JSON shapes (kserve/docs/predict-api/v2/required_api.md).

    GET  /v2                                          server metadata
    GET  /v2/health/live, /v2/health/ready            200 or 503, empty body
    GET  /v2/models/{name}[/versions/{v}]             model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready       200 or 503
    POST /v2/models/{name}[/versions/{v}]/infer       JSON tensors in and out

Tensors are {"name", "shape", "datatype", "data"} with data nested or flat in row-major order;
answers flatten it. Only the JSON form: the binary tensor data extension (Triton's
binary_data, tritonclient's default) is refused with a 400 that says how to send JSON instead.
Imported by the v2 routes only, on their first request.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from errors import ApiError, as_api_error
from mlcore.inference import check_names, to_array
from mlcore.signatures import MAX_RANK, Signature

SERVER_NAME = "serverless-ml"
PLATFORM = "litert_tflite"  # the protocol's "<project>_<format>"
BINARY_HEADER = "inference-header-content-length"
NAMED_IN_PATH = ("model_name", "model_version")
NO_BINARY = (
    "the binary tensor data extension is not supported: send the tensors as JSON "
    "(tritonclient: binary_data=False on each InferInput and InferRequestedOutput)"
)


def server_metadata() -> dict[str, Any]:
    """The server's name, its version (the Lambda function version answering), no extensions."""
    return {
        "name": SERVER_NAME,
        "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "local"),
        "extensions": [],
    }


def _tensor(spec) -> dict[str, Any]:
    return {"name": spec.key, "datatype": spec.v2_datatype, "shape": list(spec.shape)}


def model_metadata(name: str, versions: list[int], signature: Signature) -> dict[str, Any]:
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": [_tensor(t) for t in signature.inputs],
        "outputs": [_tensor(t) for t in signature.outputs],
    }


def _object(value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ApiError("INVALID_TYPE", f"'{where}' must be an object")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        raise ApiError(
            "INVALID_TYPE",
            f"'{where}' has an unknown field '{str(unknown[0])[:40]}'; its fields are "
            + ", ".join((*required, *optional)),
        )
    missing = [f for f in required if f not in value]
    if missing:
        raise ApiError("MISSING_FIELD", f"'{where}' needs '{missing[0]}'")
    return value


def _parameters(value: Any, where: str, binary_keys: tuple[str, ...]) -> None:
    """$parameters: an object of strings, numbers and booleans; the binary extension's keys
    are refused."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise ApiError("INVALID_TYPE", f"'{where}' must be an object")
    for key in binary_keys:
        if value.get(key) not in (None, False):
            raise ApiError("UNSUPPORTED_EXTENSION", f"'{where}.{key}': {NO_BINARY}")


def _shape(value: Any, where: str) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_RANK
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value)
    ):
        raise ApiError(
            "INVALID_SHAPE", f"'{where}' must be a list of at most {MAX_RANK} integers >= 0"
        )
    return value


def infer_request(
    payload: dict[str, Any],
    signature: Signature,
    max_instances: int,
    booleans_possible: bool = True,
) -> tuple[str | None, dict[str, np.ndarray], list[str] | None]:
    """(the request's id, the input arrays by name (checked: mlcore.inference.to_array), the
    outputs asked for or None for all)."""
    # model_name and model_version: KServe's SDK sends them in the body too (the path names both)
    _object(payload, "body", ("inputs",), ("id", "parameters", "outputs", *NAMED_IN_PATH))
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ApiError("INVALID_TYPE", "'id' must be a string")
    _parameters(payload.get("parameters"), "parameters", ("binary_data_output",))
    inputs = payload["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise ApiError("INVALID_TYPE", "'inputs' must be a non-empty list of tensors")
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        _object(tensor, where, ("name", "shape", "datatype", "data"), ("parameters",))
        _parameters(tensor.get("parameters"), f"{where}.parameters", ("binary_data_size",))
    names = [tensor["name"] for tensor in inputs]
    if len(set(map(str, names))) != len(names):
        raise ApiError("AMBIGUOUS_INPUT", "'inputs' names an input twice")
    with as_api_error():
        check_names(signature.input_names, names, "inputs")
    arrays: dict[str, np.ndarray] = {}
    for index, tensor in enumerate(inputs):
        name, spec = tensor["name"], signature.input(tensor["name"])
        where = f"inputs[{index}] ({name})"
        if tensor["datatype"] != spec.v2_datatype:
            raise ApiError(
                "INVALID_TYPE",
                f"{where} is {str(tensor['datatype'])[:20]}; the model's '{name}' is "
                f"{spec.v2_datatype}",
            )
        arrays[name] = to_array(
            tensor["data"],
            spec,
            where,
            shape=_shape(tensor["shape"], f"{where}.shape"),
            booleans_possible=booleans_possible,
            max_instances=max_instances,
        )
    return request_id, arrays, _wanted(payload.get("outputs"))


def _wanted(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not outputs:
        raise ApiError("INVALID_TYPE", "'outputs' must be a non-empty list of {\"name\": ...}")
    names = []
    for index, output in enumerate(outputs):
        where = f"outputs[{index}]"
        _object(output, where, ("name",), ("parameters",))
        _parameters(
            output.get("parameters"), f"{where}.parameters", ("binary_data", "classification")
        )
        names.append(output["name"])
    return names


def _data(array: np.ndarray) -> list:
    flat = array.reshape(-1)
    return (flat.astype(np.float64) if flat.dtype.kind == "f" else flat).tolist()


def infer_response(
    name: str,
    version: int,
    request_id: str | None,
    signature: Signature,
    outputs: dict[str, np.ndarray],
) -> dict[str, Any]:
    """$inference_response: each output flattened, with its shape and datatype."""
    answer: dict[str, Any] = {"model_name": name, "model_version": str(version)}
    if request_id is not None:
        answer["id"] = request_id
    answer["outputs"] = [
        {
            "name": output,
            "datatype": signature.output(output).v2_datatype,
            "shape": list(array.shape),
            "data": _data(array),
        }
        for output, array in outputs.items()
    ]
    return answer
