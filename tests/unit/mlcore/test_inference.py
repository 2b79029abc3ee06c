"""mlcore.inference: the predict path every protocol shares, on tensors of every dtype a
model may have (the function's answers come from here)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.inference import TensorError, run, to_array
from mlcore.signatures import Signature, TensorSpec

FLOAT = TensorSpec("x", "x:0", "float32", (-1, 2))
HALF = TensorSpec("h", "h:0", "float16", (-1, 2))
INT8 = TensorSpec("q", "q:0", "int8", (-1, 2), 0.5, -10, (-59.0, 68.5))
UINT8 = TensorSpec("u", "u:0", "uint8", (-1, 2), 1 / 255, 0)
INT32 = TensorSpec("i", "i:0", "int32", (-1, 2))
BOOL = TensorSpec("b", "b:0", "bool", (-1, 2))
RAW_UINT8 = TensorSpec("r", "r:0", "uint8", (-1, 2))


def code(values, spec, **kwargs) -> str:
    with pytest.raises(TensorError) as raised:
        to_array(values, spec, "where", **kwargs)
    return raised.value.code


@pytest.mark.parametrize(
    ("spec", "values", "dtype"),
    [
        (FLOAT, [[1, 2.5]], "float32"),
        (HALF, [[1, 2.5]], "float16"),
        (INT8, [[-59, 68.5]], "float32"),  # quantized: clients send real values
        (UINT8, [[0, 1]], "float32"),
        (INT32, [[1, -2]], "int32"),
        (INT32, [[1.0, 2.0]], "int32"),  # whole numbers written as floats
        (BOOL, [[True, False]], "bool"),
        (RAW_UINT8, [[0, 255]], "uint8"),
    ],
)
def test_values_become_the_served_dtype(spec, values, dtype):
    array = to_array(values, spec, "where")
    assert array.dtype == np.dtype(dtype) and array.shape == (1, 2)


@pytest.mark.parametrize(
    ("spec", "values", "expected"),
    [
        (FLOAT, [[1, True]], "INVALID_TYPE"),
        (FLOAT, [[1, "a"]], "INVALID_TYPE"),
        (FLOAT, [[1, None]], "INVALID_TYPE"),
        (FLOAT, [[1, [2]]], "INVALID_SHAPE"),
        (FLOAT, [[1, 2, 3]], "INVALID_SHAPE"),
        (FLOAT, [1, 2], "INVALID_SHAPE"),
        (FLOAT, [[1e999, 0]], "NON_FINITE_VALUE"),
        (FLOAT, [[1e39, 0]], "VALUE_OUT_OF_RANGE"),  # beyond float32
        (FLOAT, [[2**70, 0]], "VALUE_OUT_OF_RANGE"),
        (FLOAT, [], "INVALID_SHAPE"),
        (HALF, [[70000, 0]], "VALUE_OUT_OF_RANGE"),
        (INT8, [[-60, 0]], "VALUE_OUT_OF_RANGE"),  # below the range, by more than half a step
        (INT8, [[0, 69]], "VALUE_OUT_OF_RANGE"),
        (UINT8, [[0, 1.01]], "VALUE_OUT_OF_RANGE"),  # never clipped silently
        (INT32, [[1.5, 2]], "INVALID_TYPE"),
        (INT32, [[2**31, 0]], "VALUE_OUT_OF_RANGE"),
        (RAW_UINT8, [[-1, 0]], "VALUE_OUT_OF_RANGE"),
        (BOOL, [[1, 0]], "INVALID_TYPE"),
        (BOOL, [["true", "false"]], "INVALID_TYPE"),
    ],
)
def test_bad_values_are_refused_with_their_code(spec, values, expected):
    assert code(values, spec) == expected


def test_flat_data_takes_its_shape_and_the_batch_is_bounded():
    assert to_array([1, 2, 3, 4], FLOAT, "w", shape=[2, 2]).shape == (2, 2)
    assert code([1, 2, 3], FLOAT, shape=[2, 2]) == "INVALID_SHAPE"
    assert code([[1, 2]] * 3, FLOAT, max_instances=2) == "TOO_MANY_INSTANCES"
    assert code([], FLOAT, shape=[0, 2]) == "EMPTY_BATCH"


def test_pixels_scaled_to_0_1_are_refused_with_the_range_to_send():
    pixels = TensorSpec("image", "i:0", "float32", (-1, 2), value_range=(0.0, 255.0))
    with pytest.raises(TensorError) as raised:
        to_array([[0.5, 0.25]], pixels, "w")
    assert raised.value.code == "WRONG_VALUE_RANGE" and "0..255" in raised.value.message
    assert to_array([[0, 1]], pixels, "w").shape == (1, 2)  # a dark image is allowed


class Recorder:
    """A predictor: records what run() feeds it and doubles each input (x -> y)."""

    def __init__(self):
        self.fed = []

    def run(self, signature, arrays):
        self.fed.append({k: v.copy() for k, v in arrays.items()})
        return {"y": arrays["q"].astype(np.int16) * 2}


def test_run_quantizes_inputs_and_dequantizes_outputs_with_their_own_parameters():
    out = TensorSpec("y", "y:0", "int16", (-1, 2), 0.25, 4)
    signature = Signature("serving_default", (INT8,), (out,))
    predictor = Recorder()
    result = run(predictor, signature, {"q": to_array([[1.0, -2.0]], INT8, "w")})
    (fed,) = predictor.fed
    assert fed["q"].dtype == np.int8 and fed["q"].tolist() == [[-8, -14]]  # x / 0.5 - 10
    assert result["y"].tolist() == [[(-16 - 4) * 0.25, (-28 - 4) * 0.25]]


def test_a_fixed_batch_model_runs_in_chunks():
    fixed = TensorSpec("q", "q:0", "int8", (1, 2), 0.5, -10)
    out = TensorSpec("y", "y:0", "int16", (1, 2))
    predictor = Recorder()
    arrays = {"q": to_array([[1, 2], [3, 4], [5, 6]], fixed, "w")}
    result = run(predictor, Signature("s", (fixed,), (out,)), arrays)
    assert len(predictor.fed) == 3 and result["y"].shape == (3, 2)
    with pytest.raises(TensorError):
        to_array([[1, 2, 3]], fixed, "w")


def test_run_refuses_unknown_and_missing_inputs_and_outputs_by_name():
    signature = Signature("s", (INT8,), (TensorSpec("y", "y:0", "int16", (-1, 2)),))
    array = to_array([[1, 2]], INT8, "w")
    for arrays, wanted, expected in (
        ({"q": array, "z": array}, None, "UNKNOWN_INPUT"),
        ({}, None, "MISSING_INPUT"),
        ({"q": array}, ["z"], "UNKNOWN_OUTPUT"),
    ):
        with pytest.raises(TensorError) as raised:
            run(Recorder(), signature, arrays, wanted)
        assert raised.value.code == expected
