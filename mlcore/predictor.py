"""The LiteRT interpreter behind one lock: quantize a batch, invoke once, dequantize.

The interpreter's own tensor details (dtype, scale, zero point, shape) drive the
(de)quantization. With a manifest, `Predictor` refuses a model whose details disagree with it.
The Lambda function serves with this class and the training job's accuracy gate evaluates the
converted model with it, so what the gate measured is what the function answers.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from mlcore.tensors import dequantize, quantization, quantize, tensor_spec


class ModelMismatch(ValueError):
    """The model file and its manifest disagree (tensor dtype, quantization, shape, labels)."""


def _check_tensor(kind: str, details: dict[str, Any], spec: dict[str, Any]) -> None:
    """The manifest's tensor spec must describe the tensor the interpreter actually has."""
    actual_dtype = np.dtype(details["dtype"]).name
    if actual_dtype != spec["dtype"]:
        raise ModelMismatch(f"{kind} dtype is {actual_dtype}, manifest says {spec['dtype']}")
    scale, zero_point = quantization(details)
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

    def __init__(self, interpreter: Any, manifest: dict[str, Any] | None = None):
        self._interpreter = interpreter
        self._lock = threading.Lock()
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self.num_classes = int(self._output["shape_signature"][-1])
        self.instance_shape = tuple(int(d) for d in self._input["shape_signature"][1:])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = quantization(self._input)
        self.output_quantization = quantization(self._output)
        self._batch_size = int(self._input["shape"][0])
        signatures = interpreter.get_signature_list().get("serving_default", {})
        # TF Serving names (the signature's keys), e.g. "input" and "output_0".
        self.signature_input = (signatures.get("inputs") or ["input"])[0]
        self.signature_output = (signatures.get("outputs") or ["output_0"])[0]
        self.input_tensor_name = self._input["name"]
        self.output_tensor_name = self._output["name"]
        if manifest is not None:
            self.check_manifest(manifest)

    @classmethod
    def from_file(cls, path: str, manifest: dict[str, Any] | None = None) -> Predictor:
        from ai_edge_litert.interpreter import Interpreter  # the only native import: load time

        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
        return cls(interpreter, manifest)

    @classmethod
    def from_bytes(cls, content: bytes, manifest: dict[str, Any] | None = None) -> Predictor:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        return cls(interpreter, manifest)

    def check_manifest(self, manifest: dict[str, Any]) -> None:
        """ModelMismatch unless the manifest describes this model's tensors and classes."""
        _check_tensor("input", self._input, manifest["input"])
        _check_tensor("output", self._output, manifest["output"])
        if self.num_classes != len(manifest["labels"]):
            raise ModelMismatch(
                f"the model has {self.num_classes} outputs, "
                f"manifest lists {len(manifest['labels'])} labels"
            )

    @property
    def input_spec(self) -> dict[str, Any]:
        return tensor_spec(self._input)

    @property
    def output_spec(self) -> dict[str, Any]:
        return tensor_spec(self._output)

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
