"""mlcore.tensors: real values <-> a tensor's storage type with the tensor's own quantization
(every branch), and the manifest's tensor spec from interpreter details, without TensorFlow."""

import numpy as np
import pytest

from mlcore.predictor import Predictor
from mlcore.tensors import dequantize, quantization, quantize, tensor_spec
from tests.function_support import fixture_manifest, fixture_model


def test_quantize_rounds_shifts_and_saturates_to_the_storage_type():
    values = np.array([-1000.0, -1.0, -0.26, 0.0, 0.24, 0.26, 1.0, 1000.0], np.float32)
    q = quantize(values, 0.5, -3, np.int8)
    assert q.dtype == np.int8
    # round(v / 0.5) - 3, clipped to int8's -128..127
    assert q.tolist() == [-128, -5, -4, -3, -3, -2, -1, 127]
    u = quantize(values, 0.5, 10, "uint8")
    assert u.dtype == np.uint8 and u.tolist() == [0, 8, 9, 10, 10, 11, 12, 255]


def test_quantize_divides_by_the_scale():
    assert quantize(np.array([3.0, 7.5], np.float32), 2.5, 0, np.int16).tolist() == [1, 3]


def test_an_unquantized_integer_tensor_takes_the_values_as_they_are():
    values = np.array([0.0, 7.0, 255.0], np.float32)
    q = quantize(values, 0.0, 0, np.uint8)  # scale 0: not quantized
    assert q.dtype == np.uint8 and q.tolist() == [0, 7, 255]
    assert quantize(values, 0.0, 5, np.int32).tolist() == [0, 7, 255]  # zero point unused


def test_a_float_tensor_is_never_quantized_whatever_its_scale():
    values = np.array([0.3, -2.5], np.float32)
    for dtype in (np.float32, np.float16):
        q = quantize(values, 0.5, 3, dtype)
        assert q.dtype == dtype
        np.testing.assert_allclose(q, values.astype(dtype))
    same = quantize(values, 0.0, 0, np.float32)
    assert same is values  # no copy for the dtype it already has


def test_dequantize_subtracts_the_zero_point_then_scales():
    raw = np.array([-128, 0, 5, 127], np.int8)
    out = dequantize(raw, 0.5, 5)
    assert out.dtype == np.float32 and out.tolist() == [-66.5, -2.5, 0.0, 61.0]
    # scale 1: only the zero point moves the values
    assert dequantize(np.array([0, 10], np.uint8), 1.0, 4).tolist() == [-4.0, 6.0]


def test_dequantize_leaves_unquantized_and_float_tensors_as_values():
    assert dequantize(np.array([3, 4], np.int32), 0.0, 9).tolist() == [3.0, 4.0]
    floats = np.array([0.25, 0.75], np.float32)
    assert dequantize(floats, 0.5, 3) is floats
    halves = dequantize(np.array([0.5], np.float16), 2.0, 1)
    assert halves.dtype == np.float32 and halves.tolist() == [0.5]


def test_quantize_then_dequantize_is_within_half_a_step():
    values = np.linspace(-10, 10, 101, dtype=np.float32)
    back = dequantize(quantize(values, 0.1, -7, np.int8), 0.1, -7)
    assert np.max(np.abs(back - values)) <= 0.05 + 1e-6


DETAILS = {
    "name": "serving_default_input:0",
    "index": 0,
    "shape": np.array([1, 28, 28, 1], np.int32),
    "shape_signature": np.array([-1, 28, 28, 1], np.int32),
    "dtype": np.int8,
    "quantization": (0.003921568859368563, -128),
}


def test_tensor_spec_from_interpreter_details_without_tensorflow():
    spec = tensor_spec(DETAILS)
    assert spec == {
        "name": "serving_default_input:0",
        "shape": [-1, 28, 28, 1],
        "dtype": "int8",
        "quantization": {"scale": 0.003921568859368563, "zero_point": -128},
    }
    assert type(spec["shape"][0]) is int and type(spec["quantization"]["zero_point"]) is int
    assert quantization({"quantization": (np.float32(0.5), np.int64(3))}) == (0.5, 3)


def test_the_fixture_models_specs_are_what_its_manifest_records():
    """The same function on a real interpreter's details (LiteRT, not TensorFlow)."""
    predictor = Predictor.from_bytes(fixture_model())
    manifest = fixture_manifest()
    for spec, recorded in (
        (predictor.input_spec, manifest["input"]),
        (predictor.output_spec, manifest["output"]),
    ):
        assert spec["dtype"] == recorded["dtype"]
        assert spec["shape"][1:] == recorded["shape"][1:]
        assert spec["quantization"]["zero_point"] == recorded["quantization"]["zero_point"]
        assert spec["quantization"]["scale"] == pytest.approx(recorded["quantization"]["scale"])
