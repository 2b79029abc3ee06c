"""The TensorFlow Serving REST API's JSON shapes (tensorflow_serving/g3doc/api_rest.md).

    POST /v1/models/{name}[/versions/{version}|/labels/{label}]:predict
         {"instances": ...} -> {"predictions": ...}    row format
         {"inputs": ...}    -> {"outputs": ...}        columnar format
    GET  /v1/models/{name}[/versions/{version}|/labels/{label}]           GetModelStatusResponse
    GET  /v1/models/{name}[/versions/{version}|/labels/{label}]/metadata  GetModelMetadataResponse

A model with one input takes its value directly (or an object naming it); one with several
takes an object per instance (row format) or one object of tensors (columnar). One output is
answered without its name, several as objects by name, as TF Serving does. Protobuf JSON
mapping: int64 values (versions, dims) are strings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from errors import ApiError, as_api_error
from mlcore.inference import check_names, to_array
from mlcore.signatures import Signature

PREDICT_METHOD = "tensorflow/serving/predict"
# curl -d (TF Serving's own examples) sends this Content-Type; TF Serving ignores it.
CURL_DEFAULT_MEDIA_TYPE = "application/x-www-form-urlencoded"
LABELS = ("stable", "canary")  # version labels: the pointer's roles


def signature_name(payload: dict[str, Any], signatures: dict[str, Any], default: str) -> str:
    """The signature a request names: absent or "" means the default one (serving_default, as
    TF Serving's own metadata says with signature_name "")."""
    chosen = payload.get("signature_name", "")
    if chosen == "":
        return default
    if isinstance(chosen, str) and chosen in signatures:
        return chosen
    shown = chosen[:60] if isinstance(chosen, str) else type(chosen).__name__
    raise ApiError(
        "UNKNOWN_SIGNATURE",
        f"signature_name '{shown}' not found; this model has {', '.join(sorted(signatures))} "
        f"('' or none means {default})",
    )


def predict_input(payload: dict[str, Any], input_names: list[str]) -> tuple[str, dict[str, Any]]:
    """("instances" or "inputs", {input name: its values}): the row or the columnar format.
    A value {"b64": ...} is TF Serving's binary encoding (images, for an image model)."""
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
            return "instances", _rows_to_columns(instances, input_names)
        return "instances", _single(instances, input_names, "instances")
    if "inputs" in payload:
        inputs = payload["inputs"]
        if isinstance(inputs, dict) and not _is_binary(inputs):
            _check_names(list(inputs), input_names, "inputs")
            return "inputs", inputs
        return "inputs", _single(inputs, input_names, "inputs")
    raise ApiError(
        "MISSING_FIELD", "the body needs 'instances' (row format) or 'inputs' (columnar format)"
    )


def input_arrays(
    signature: Signature,
    inputs: dict[str, Any],
    field: str,
    booleans_possible: bool,
    max_instances: int,
) -> dict[str, np.ndarray]:
    """Each named input's JSON values (predict_input's) as a checked array
    (mlcore.inference.to_array); {"b64": ...} values are images, which only an image classifier
    takes."""
    from preprocessing import is_binary_batch

    if any(is_binary_batch(values) for values in inputs.values()):
        raise ApiError(
            "INVALID_TYPE",
            f"{{\"b64\": ...}} values in '{field}' are images: only an image classifier takes "
            f"them; this model's inputs are {', '.join(signature.input_names)}",
        )
    return {
        name: to_array(
            values,
            signature.input(name),
            f"{field}.{name}" if len(inputs) > 1 else field,
            booleans_possible=booleans_possible,
            max_instances=max_instances,
        )
        for name, values in inputs.items()
    }


def _is_binary(value: dict) -> bool:
    """{"b64": "..."}: TF Serving's binary value, not a named tensor."""
    return set(value) == {"b64"}


def _single(value: Any, input_names: list[str], field: str) -> dict[str, Any]:
    if len(input_names) != 1:
        raise ApiError(
            "MISSING_INPUT",
            f"this model has inputs {', '.join(input_names)}: send '{field}' as "
            + (
                "one object per instance, {" + ", ".join(f'"{n}": ...' for n in input_names) + "}"
                if field == "instances"
                else "an object of tensors by name"
            ),
        )
    return {input_names[0]: value}


def _check_names(given: list[str], input_names: list[str], field: str) -> None:
    with as_api_error():
        check_names(input_names, given, field)


def _rows_to_columns(rows: list[dict[str, Any]], input_names: list[str]) -> dict[str, list]:
    """Row format with named inputs -> one list per input (every row names every input)."""
    for row in rows:
        _check_names(list(row), input_names, "instances")
    return {name: [row[name] for row in rows] for name in input_names}


def as_json(array: np.ndarray) -> Any:
    """An output as JSON values (float32 read as the float64 of the same value)."""
    if array.dtype.kind == "f":
        array = array.astype(np.float64)
    return array.tolist()


def predict_response(fmt: str, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    """One output: its values without a name; several: by name, per row (row format, every
    output with the same first dimension) or per tensor (columnar)."""
    key = "predictions" if fmt == "instances" else "outputs"
    if len(outputs) == 1:
        (array,) = outputs.values()
        return {key: as_json(array)}
    if fmt == "inputs":
        return {key: {name: as_json(array) for name, array in outputs.items()}}
    counts = {array.shape[0] if array.ndim else None for array in outputs.values()}
    if len(counts) != 1 or None in counts:
        raise ApiError(
            "INVALID_SHAPE",
            "this model's outputs do not share their first dimension, so they cannot be "
            "answered per instance: send the request in the columnar format ('inputs')",
        )
    columns = {name: as_json(array) for name, array in outputs.items()}
    return {
        key: [{name: column[i] for name, column in columns.items()} for i in range(counts.pop())]
    }


def model_status(versions: list[dict[str, Any]]) -> dict[str, Any]:
    """GetModelStatusResponse: one entry per version held ({"version", "state", "error"}):
    AVAILABLE, LOADING, or END with the reason it is not served."""
    return {
        "model_version_status": [
            {
                "version": str(entry["version"]),
                "state": entry["state"],
                "status": {
                    "error_code": "OK" if not entry.get("error") else "UNAVAILABLE",
                    "error_message": entry.get("error") or "",
                },
            }
            for entry in versions
        ]
    }


def _tensor_info(spec) -> dict[str, Any]:
    return {
        # clients send and receive real values; (de)quantization is ours
        "dtype": spec.tfserving_dtype,
        "tensor_shape": {
            "dim": [{"size": str(int(d)), "name": ""} for d in spec.shape],
            "unknown_rank": False,
        },
        "name": spec.tensor,
    }


def model_metadata(
    *,
    name: str,
    version: int,
    signatures: dict[str, Signature],
    expected_inputs: dict[str, dict[str, Any]],
    classifier: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """GetModelMetadataResponse: every signature's signature_def, and this API's extensions
    beside it: metadata["expected_inputs"], per signature and input the value range the model
    takes (null: any finite value) and, for an image model, how an image is prepared; and for
    an image classifier metadata["classifier"], its class names and input kind (what the page
    at GET / shows). TF Serving's clients read signature_def and ignore them."""
    extension = {"classifier": classifier} if classifier is not None else {}
    return {
        "model_spec": {"name": name, "signature_name": "", "version": str(version)},
        "metadata": {
            **extension,
            "signature_def": {
                "signature_def": {
                    key: {
                        "inputs": {t.key: _tensor_info(t) for t in signature.inputs},
                        "outputs": {t.key: _tensor_info(t) for t in signature.outputs},
                        "method_name": PREDICT_METHOD,
                    }
                    for key, signature in signatures.items()
                }
            },
            "expected_inputs": expected_inputs,
        },
    }
