"""The predict path every protocol shares: request tensors -> response tensors, for any model.

    arrays = {name: to_array(values, spec, where, ...) for each input}   # checked, served dtype
    outputs = run(predictor, signature, arrays, wanted, deadline)       # real values out

Pure functions of (model, request tensors): no HTTP, no JSON. The protocols (TF Serving's row
and columnar formats, the Open Inference Protocol's tensors, this API's own /predict) only turn
their bodies into nested lists and their answers back; a batch job can call the same.

A request the model cannot answer raises TensorError with a stable code (the function's error
codes) and a message naming what is expected, never echoing the caller's values.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlcore.deadline import Deadline
from mlcore.signatures import Signature, TensorSpec
from mlcore.tensor_errors import TensorError
from mlcore.tensors import dequantize, quantize

PIXELS = (0.0, 255.0)  # an image model's input range: 8-bit pixels
# Every image model takes 8-bit pixels: its own scaling (to [0, 1], [-1, 1] or a mean and
# deviation) is part of the converted graph, so clients never scale.
RAW_PIXELS = "send raw pixels 0..255, the scaling is inside the model"


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a number"


def leaves(nested: Any, depth: int):
    """The values `depth` levels down a rectangular nested list, without copying."""
    for _ in range(depth - 1):
        nested = itertools.chain.from_iterable(nested)
    return nested


def check_count(count: int, max_instances: int, where: str) -> None:
    """The batch of one request: 1 to max_instances."""
    if count == 0:
        raise TensorError("EMPTY_BATCH", f"'{where}' is empty; send between 1 and {max_instances}")
    if count > max_instances:
        raise TensorError(
            "TOO_MANY_INSTANCES",
            f"'{where}' has {count} instances; at most {max_instances} are allowed per request",
        )


def check_value_scale(array: np.ndarray, low: float, high: float, where: str) -> None:
    """Values scaled to [0, 1] sent to a model of 0..255 would be answered with confident
    garbage (a near-black image): refused instead, with the range to send. Integers 0 and 1
    alone are allowed (a legitimately dark image); fractions are what gives 0..1 away."""
    if high <= 1 or array.dtype.kind != "f" or array.max() > 1 or array.min() < 0:
        return
    if np.any(array != np.round(array)):
        raise TensorError(
            "WRONG_VALUE_RANGE",
            f"every value of '{where}' lies within [0, 1]: this model takes values "
            f"{low:g}..{high:g} (8-bit pixels); multiply by {high:g}"
            + (f": {RAW_PIXELS}" if (low, high) == PIXELS else ""),
        )


def check_range(array: np.ndarray, low: float, high: float, where: str) -> tuple[float, float]:
    """Every value within [low, high]; a message that says where values outside come from.
    Returns the smallest and the largest value (the function's input statistics reuse them)."""
    # the reductions themselves (min() and max() add a Python-level wrapper each), compared as
    # Python floats (a numpy scalar's comparison costs about 3 us: this runs on every request)
    smallest = float(np.minimum.reduce(array, axis=None))
    largest = float(np.maximum.reduce(array, axis=None))
    if smallest < low or largest > high:
        pixels = (low, high) == PIXELS
        scaled = "they look scaled to [-1, 1]; " if -1 <= smallest and largest <= 1 else ""
        raise TensorError(
            "VALUE_OUT_OF_RANGE",
            f"'{where}' values must be within [{low:g}, {high:g}]; found values from "
            f"{smallest:g} to {largest:g}" + (f": {scaled}{RAW_PIXELS}" if pixels else ""),
        )
    if (low, high) == PIXELS:
        check_value_scale(array, low, high, where)
    return smallest, largest


def check_numbers(array: np.ndarray, nested: Any, where: str, booleans_possible: bool) -> None:
    """INVALID_TYPE unless every value of a parsed JSON array is a number (numpy turns
    booleans mixed with numbers into 0/1 silently, so the JSON values are looked at)."""
    kind = array.dtype.kind
    if kind in "iuf":
        if booleans_possible and array.ndim and bool in set(map(type, leaves(nested, array.ndim))):
            raise TensorError("INVALID_TYPE", f"'{where}' contains a boolean; send numbers")
        return
    if kind == "O":
        offenders = [
            v for v in array.ravel() if not isinstance(v, int | float) or isinstance(v, bool)
        ]
        if not offenders:  # integers too large for int64
            raise TensorError("VALUE_OUT_OF_RANGE", f"'{where}' holds integers beyond 64 bits")
        found = json_type(offenders[0])
    else:
        found = {"b": "a boolean", "U": "a string", "S": "a string"}.get(kind, "a non-number")
    raise TensorError("INVALID_TYPE", f"'{where}' contains {found}; send numbers")


def rectangular(
    values: Any, where: str, describe: Callable[[], str], expected: str = ""
) -> np.ndarray:
    """Nested lists as an array; INVALID_SHAPE when ragged, saying what is expected (written
    only then: `expected` + describe())."""
    try:
        return np.asarray(values)
    except (ValueError, TypeError):
        raise TensorError(
            "INVALID_SHAPE", f"'{where}' is not a rectangular array: {expected}{describe()}"
        ) from None


def to_array(
    values: Any,
    spec: TensorSpec,
    where: str,
    shape: Sequence[int] | None = None,
    booleans_possible: bool = True,
    max_instances: int | None = None,
) -> np.ndarray:
    """JSON values (nested lists; flat in row-major order when `shape` is given) -> an array
    of spec.served_dtype, checked: rectangular, the values' type, the tensor's shape (its -1
    dimensions any size), finite, within the dtype and the input's value range, and at most
    max_instances along its first dimension."""
    array = rectangular(values, where, spec.describe_shape, f"the model's '{spec.key}' takes ")
    if spec.served_dtype == "bool":
        if array.dtype.kind != "b":
            raise TensorError(
                "INVALID_TYPE", f"'{where}' must hold true or false values ('{spec.key}' is BOOL)"
            )
    else:
        check_numbers(array, values, where, booleans_possible)
    if shape is not None:
        if array.size != math.prod(shape):
            raise TensorError(
                "INVALID_SHAPE",
                f"'{where}' has {array.size} values; its shape {list(shape)} needs "
                f"{math.prod(shape)}",
            )
        array = array.reshape(tuple(shape))
    check_shape(array.shape, spec, where)
    if max_instances is not None and array.ndim:
        check_count(array.shape[0], max_instances, where)
    if not array.size:
        raise TensorError("EMPTY_BATCH", f"'{where}' holds no values")
    return _cast(array, spec, where)


def check_shape(shape: tuple[int, ...], spec: TensorSpec, where: str) -> None:
    """The tensor's shape, -1 meaning any size. A fixed first dimension (a model converted
    with a static batch) also takes any multiple of it: run() feeds it in chunks."""
    expected = spec.shape
    fits = len(shape) == len(expected) and all(
        e == -1 or s == e or (i == 0 and e > 0 and s % e == 0 and s > 0)
        for i, (s, e) in enumerate(zip(shape, expected, strict=True))
    )
    if not fits:
        raise TensorError(
            "INVALID_SHAPE",
            f"'{where}' has shape {list(shape)}; the model's '{spec.key}' takes "
            f"{spec.describe_shape()} (any: any size)",
        )


def _cast(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    dtype = np.dtype(spec.served_dtype)
    if dtype.kind == "b":
        return array.astype(dtype, copy=False)
    if array.dtype.kind == "f" and not np.isfinite(array).all():  # 1e999 parses to infinity
        raise TensorError("NON_FINITE_VALUE", f"'{where}' contains a value too large to be finite")
    if dtype.kind in "iu":
        if array.dtype.kind == "f" and np.any(array != np.round(array)):
            raise TensorError(
                "INVALID_TYPE", f"'{where}' must hold whole numbers ('{spec.key}' is {spec.dtype})"
            )
        info = np.iinfo(dtype)
        check_range(array, info.min, info.max, where)
        return array.astype(dtype)
    if spec.value_range is not None:
        check_range(array, *spec.value_range, where)
    elif (representable := spec.representable_range()) is not None:  # never clipped silently
        check_range(
            array, representable[0] - spec.scale / 2, representable[1] + spec.scale / 2, where
        )
    largest = float(np.finfo(dtype).max)
    if np.abs(array).max() > largest:
        raise TensorError(
            "VALUE_OUT_OF_RANGE", f"'{where}' values must be within ±{largest:g} ({dtype.name})"
        )
    return array.astype(dtype)


def check_names(expected: Sequence[str], given: Sequence[str], where: str) -> None:
    """Every input of the signature (`expected`), and no other, by name."""
    for code, names, problem in (
        (
            "UNKNOWN_INPUT",
            [n for n in given if n not in expected],
            "has an input the model has not",
        ),
        ("MISSING_INPUT", [n for n in expected if n not in given], "lacks the model's input"),
    ):
        if names:
            raise TensorError(
                code,
                f"'{where}' {problem} ('{str(names[0])[:60]}'); the model's inputs are "
                f"{', '.join(expected)}",
            )


def check_outputs(signature: Signature, wanted: Sequence[str] | None, where: str) -> list[str]:
    """The outputs to answer: those asked for (each once, by name), else all of them."""
    if wanted is None:
        return signature.output_names
    for output in wanted:
        if signature.output(output) is None:
            raise TensorError(
                "UNKNOWN_OUTPUT",
                f"'{where}' asks for an output the model does not have "
                f"('{str(output)[:60]}'); its outputs are {', '.join(signature.output_names)}",
            )
    return list(dict.fromkeys(wanted))


def run(
    predictor: Any,
    signature: Signature,
    arrays: dict[str, np.ndarray],
    wanted: Sequence[str] | None = None,
    deadline: Deadline | None = None,
) -> dict[str, np.ndarray]:
    """The model's outputs (real values: dequantized) for checked inputs (to_array), those
    asked for in that order, else all. A model of fixed batch size b is run in chunks of b.
    Nothing runs once the deadline has passed."""
    check_names(signature.input_names, list(arrays), "inputs")
    names = check_outputs(signature, wanted, "outputs")
    stored = {
        spec.key: quantize(arrays[spec.key], spec.scale, spec.zero_point, spec.dtype)
        if spec.quantized
        else arrays[spec.key]
        for spec in signature.inputs
    }
    results = []
    for chunk in _chunks(signature, stored):
        if deadline is not None and deadline.expired:
            raise TensorError(
                "PAYLOAD_TOO_LARGE",
                "the model did not finish within the time this request has; send fewer instances",
            )
        results.append(predictor.run(signature, chunk))
    outputs = {}
    for output in names:
        spec = signature.output(output)
        raw = (
            results[0][output]
            if len(results) == 1
            else np.concatenate([r[output] for r in results])
        )
        outputs[output] = dequantize(raw, spec.scale, spec.zero_point) if spec.quantized else raw
    return outputs


def _chunks(signature: Signature, stored: dict[str, np.ndarray]):
    """The inputs as they go to the interpreter: whole, or in chunks of a fixed batch size."""
    sizes = {spec.shape[0] for spec in signature.inputs if spec.shape}
    counts = {array.shape[0] for array in stored.values() if array.ndim}
    if len(sizes) != 1 or len(counts) != 1:
        return [stored]
    (size,), (count,) = sizes, counts
    if size == -1 or count == size:
        return [stored]
    return [
        {k: v[start : start + size] for k, v in stored.items()} for start in range(0, count, size)
    ]
