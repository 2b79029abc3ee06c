"""The LiteRT interpreter behind one lock: quantize a batch, invoke once, dequantize.

The interpreter's own tensor details (dtype, scale, zero point, shape) drive the
(de)quantization. With a manifest, `Predictor` refuses a model whose details disagree with it.
The Lambda function serves with this class and the training job's accuracy gate evaluates the
converted model with it, so what the gate measured is what the function answers.

Two ways in: `predict(batch)`, an image classifier's one input and one output (the warm path of
POST /predict), and `run(signature, arrays)`, any signature of any model by its names
(mlcore.inference prepares the arrays and reads the answers).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from mlcore.signatures import Signature, read_signatures
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
        # an image classifier's (what predict() serves); any model may be built (run())
        self.num_classes = (
            int(self._output["shape_signature"][-1]) if self._output["shape"].size else 1
        )
        self.instance_shape = tuple(int(d) for d in self._input["shape_signature"][1:])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.input_quantization = quantization(self._input)
        self.output_quantization = quantization(self._output)
        self._batch_size: int | None = (
            int(self._input["shape"][0]) if self._input["shape"].size else None
        )
        # a model without SignatureDefs runs its main graph (read_signatures names it)
        self._graph_only = not interpreter.get_signature_list()
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

    def signatures(self) -> dict[str, Signature]:
        """The model's signatures as it has them (mlcore.signatures.read_signatures)."""
        with self._lock:
            return read_signatures(self._interpreter)

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

    def run(self, signature: Signature, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One invoke of a signature: arrays of each input's own dtype in (quantized already),
        each output's own dtype out, by the signature's names. Inputs are resized to the
        arrays' shapes (within what the model allows: mlcore.inference checked them)."""
        with self._lock:
            self._batch_size = None  # predict() resizes its input again next time
            if self._graph_only:
                return self._run_graph(arrays)
            # A runner holds a reference to the interpreter's internals, which makes LiteRT
            # refuse predict()'s resize ("at least 1 reference to internal data"): one per
            # call (2 us), gone when the call returns.
            return self._interpreter.get_signature_runner(signature.key)(**arrays)

    def _run_graph(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A model without signatures: its main graph's tensors, named as read_signatures
        named them (their tensor names)."""
        interpreter = self._interpreter
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        for name, array in arrays.items():
            if tuple(inputs[name]["shape"]) != array.shape:
                interpreter.resize_tensor_input(inputs[name]["index"], list(array.shape))
        interpreter.allocate_tensors()
        for name, array in arrays.items():
            interpreter.set_tensor(inputs[name]["index"], array)
        interpreter.invoke()
        return {
            d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()
        }
