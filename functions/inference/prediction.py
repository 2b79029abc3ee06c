"""The LiteRT interpreter behind one lock: quantize a batch, invoke once, dequantize.

The interpreter's own tensor details (dtype, scale, zero point, shape) drive the
(de)quantization; `Predictor` refuses a model whose details disagree with its manifest.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np


class ModelMismatch(ValueError):
    """The model file and its manifest disagree (tensor dtype, quantization, shape, labels)."""


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Real values -> the tensor's storage type (a scale of 0 means "not quantized")."""
    dtype = np.dtype(dtype)
    if scale == 0 or dtype.kind == "f":
        return values.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    quantized = np.round(values / np.float32(scale)) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """The tensor's storage type -> float32 real values."""
    if scale == 0 or values.dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    return (values.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def _quantization(details: dict[str, Any]) -> tuple[float, int]:
    scale, zero_point = details["quantization"]
    return float(scale), int(zero_point)


def _check_tensor(kind: str, details: dict[str, Any], spec: dict[str, Any]) -> None:
    """The manifest's tensor spec must describe the tensor the interpreter actually has."""
    actual_dtype = np.dtype(details["dtype"]).name
    if actual_dtype != spec["dtype"]:
        raise ModelMismatch(f"{kind} dtype is {actual_dtype}, manifest says {spec['dtype']}")
    scale, zero_point = _quantization(details)
    expected = spec.get("quantization", {"scale": 0.0, "zero_point": 0})
    if not math.isclose(scale, float(expected["scale"]), rel_tol=1e-6, abs_tol=1e-12) or (
        zero_point != int(expected["zero_point"])
    ):
        raise ModelMismatch(
            f"{kind} quantization is scale={scale} zero_point={zero_point}, manifest says "
            f"scale={expected['scale']} zero_point={expected['zero_point']}"
        )
    actual_shape = [int(d) for d in details["shape_signature"]][1:]
    if actual_shape != [int(d) for d in spec["shape"]][1:]:
        raise ModelMismatch(
            f"{kind} shape is {actual_shape} per instance, manifest says {spec['shape'][1:]}"
        )


class Predictor:
    """One interpreter per execution environment; `predict` runs a whole batch in one invoke."""

    def __init__(self, interpreter: Any, manifest: dict[str, Any]):
        self._interpreter = interpreter
        self._lock = threading.Lock()
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        _check_tensor("input", self._input, manifest["input"])
        _check_tensor("output", self._output, manifest["output"])
        self.num_classes = int(self._output["shape_signature"][-1])
        if self.num_classes != len(manifest["labels"]):
            raise ModelMismatch(
                f"the model has {self.num_classes} outputs, "
                f"manifest lists {len(manifest['labels'])} labels"
            )
        self.instance_shape = tuple(int(d) for d in self._input["shape_signature"][1:])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = _quantization(self._input)
        self.output_quantization = _quantization(self._output)
        self._batch_size = int(self._input["shape"][0])
        signatures = interpreter.get_signature_list().get("serving_default", {})
        # TF Serving names (the signature's keys), e.g. "input" and "output_0".
        self.signature_input = (signatures.get("inputs") or ["input"])[0]
        self.signature_output = (signatures.get("outputs") or ["output_0"])[0]
        self.input_tensor_name = self._input["name"]
        self.output_tensor_name = self._output["name"]

    @classmethod
    def from_file(cls, path: str, manifest: dict[str, Any]) -> Predictor:
        from ai_edge_litert.interpreter import Interpreter  # the only native import: load time only

        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
        return cls(interpreter, manifest)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Real inputs (N, *instance_shape) -> float32 probabilities (N, classes)."""
        batch = np.asarray(batch, dtype=np.float32).reshape((-1, *self.instance_shape))
        tensor = quantize(batch, *self.input_quantization, self.input_dtype)
        with self._lock:  # the local API may call concurrently; the interpreter is not thread-safe
            if tensor.shape[0] != self._batch_size:
                self._interpreter.resize_tensor_input(self._input["index"], list(tensor.shape))
                self._interpreter.allocate_tensors()
                self._batch_size = tensor.shape[0]
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._output["index"])
        return dequantize(raw, *self.output_quantization)


def classify(probabilities: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """One answer per row: the top class, its label and confidence, and every probability."""
    top = probabilities.argmax(axis=1)
    rows = probabilities.astype(np.float64).tolist()
    return [
        {
            "label": labels[class_id],
            "class_id": int(class_id),
            "confidence": row[class_id],
            "probabilities": row,
        }
        for class_id, row in zip(top.tolist(), rows, strict=True)
    ]
