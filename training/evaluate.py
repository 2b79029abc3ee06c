"""Evaluation of the converted model through LiteRT, the runtime the Lambda function uses,
and the accuracy gate. No TensorFlow import here."""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class AccuracyGateError(Exception):
    """The converted model lost more accuracy than allowed; nothing may be published."""


def tensor_spec(detail: dict) -> dict:
    scale, zero_point = detail["quantization"]
    return {
        "name": detail["name"],
        "shape": [int(d) for d in detail["shape_signature"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
    }


def quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    if scale == 0:  # not a quantized tensor
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero_point = detail["quantization"]
    if scale == 0:
        return q.astype(np.float32)
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


def tflite_specs(model_content: bytes) -> tuple[dict, dict]:
    interpreter = Interpreter(model_content=model_content)
    return (
        tensor_spec(interpreter.get_input_details()[0]),
        tensor_spec(interpreter.get_output_details()[0]),
    )


def tflite_probabilities(model_content: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities for a batch of raw inputs, in one interpreter call."""
    interpreter = Interpreter(model_content=model_content)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], quantize(x.astype(np.float32), inp))
    interpreter.invoke()
    return dequantize(interpreter.get_tensor(out["index"]), out)


def accuracy(probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == y))


def accuracy_drop_points(float_accuracy: float, quantized_accuracy: float) -> float:
    return round((float_accuracy - quantized_accuracy) * 100, 4)


def check_accuracy_gate(float_accuracy: float, quantized_accuracy: float, max_drop: float) -> float:
    """Returns the drop in percentage points; raises when it exceeds max_drop."""
    drop = accuracy_drop_points(float_accuracy, quantized_accuracy)
    if drop > max_drop:
        raise AccuracyGateError(
            f"quantized accuracy {quantized_accuracy:.2%} is {drop:.2f} points below the float "
            f"model's {float_accuracy:.2%}; at most {max_drop:.2f} allowed (--max-accuracy-drop)"
        )
    return drop
