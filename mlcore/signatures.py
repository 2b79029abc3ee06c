"""A TFLite model's signatures: its named input and output tensors, as clients address them.

A signature (TensorFlow's SignatureDef; LiteRT keeps them in the flatbuffer) maps names, such as
"features" or "output_0", to the graph's tensors. Clients of both protocols use these names; the
graph's own tensor names ("serving_default_features:0") are informative. A model written without
signatures (TF 1.x converters, old model zoos) gets one, "serving_default", named after its
graph's input and output tensors.

Every tensor clients see carries real values: an int8 or uint8 tensor with a quantization scale
takes and gives float32 (quantized and dequantized with its own scale and zero point), any other
tensor its own dtype. numpy only (the interpreter is passed in): training, the functions and the
tests share this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
# Tensor dtypes a model may have (numpy names) -> (TF Serving's DataType, the Open Inference
# Protocol's datatype) when the tensor is not quantized. A quantized tensor is served as float32.
DTYPES: dict[str, tuple[str, str]] = {
    "float32": ("DT_FLOAT", "FP32"),
    "float16": ("DT_HALF", "FP16"),
    "int8": ("DT_INT8", "INT8"),
    "uint8": ("DT_UINT8", "UINT8"),
    "int16": ("DT_INT16", "INT16"),
    "int32": ("DT_INT32", "INT32"),
    "int64": ("DT_INT64", "INT64"),
    "bool": ("DT_BOOL", "BOOL"),
}
QUANTIZABLE = ("int8", "uint8", "int16")  # integer tensors that may carry a scale
MAX_RANK = 8
MAX_DIM = 2**31 - 1
MAX_TENSORS = 64  # inputs or outputs of one signature
MAX_SIGNATURES = 16
MAX_NAME = 256  # characters of a signature, input, output or tensor name


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a signature. shape: -1 where any size is allowed (the batch, a
    sequence length); value_range: the real values an input accepts, where it has one."""

    key: str  # the signature's name for it: what clients send and receive
    tensor: str  # the graph's tensor name
    dtype: str  # the tensor's own dtype (numpy's name)
    shape: tuple[int, ...]
    scale: float = 0.0
    zero_point: int = 0
    value_range: tuple[float, float] | None = None

    @property
    def quantized(self) -> bool:
        return self.scale > 0 and self.dtype in QUANTIZABLE

    @property
    def served_dtype(self) -> str:
        """What clients send and receive: float32 for a quantized tensor, else its dtype."""
        return "float32" if self.quantized else self.dtype

    @property
    def tfserving_dtype(self) -> str:
        return DTYPES[self.served_dtype][0]

    @property
    def v2_datatype(self) -> str:
        return DTYPES[self.served_dtype][1]

    def representable_range(self) -> tuple[float, float] | None:
        """The real values a quantized tensor can hold: its integer range through its scale."""
        if not self.quantized:
            return None
        info = np.iinfo(self.dtype)
        return (
            (info.min - self.zero_point) * self.scale,
            (info.max - self.zero_point) * self.scale,
        )

    def describe_shape(self) -> str:
        return "[" + ", ".join("any" if d == -1 else str(d) for d in self.shape) + "]"

    def manifest(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.tensor,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "quantization": {"scale": self.scale, "zero_point": self.zero_point},
        }
        if self.value_range is not None:
            entry["value_range"] = list(self.value_range)
        return entry


@dataclass(frozen=True)
class Signature:
    """A signature's inputs and outputs, in the order of their names."""

    key: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, key: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.key == key), None)

    def output(self, key: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.key == key), None)

    @property
    def input_names(self) -> list[str]:
        return [t.key for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.key for t in self.outputs]

    def manifest(self) -> dict[str, Any]:
        return {
            "inputs": {t.key: t.manifest() for t in self.inputs},
            "outputs": {t.key: t.manifest() for t in self.outputs},
        }


# -- from the interpreter ---------------------------------------------------------------------


def tensor_from_details(key: str, details: dict[str, Any], where: str) -> TensorSpec:
    """A TensorSpec from LiteRT's tensor details; a ValueError naming what cannot be served."""
    dtype = np.dtype(details["dtype"]).name
    if dtype not in DTYPES:
        raise ValueError(
            f"{where} '{key}' is {dtype}; tensors of {', '.join(DTYPES)} can be served"
        )
    parameters = details.get("quantization_parameters") or {}
    scales = np.asarray(parameters.get("scales", []))
    if scales.size > 1:
        raise ValueError(
            f"{where} '{key}' is quantized per axis ({scales.size} scales); inputs and outputs "
            "must be float or quantized per tensor"
        )
    scale, zero_point = (float(v) for v in details["quantization"])
    if dtype not in QUANTIZABLE:
        scale, zero_point = 0.0, 0
    shape = tuple(int(d) for d in details["shape_signature"])
    return TensorSpec(key, str(details["name"]), dtype, shape, scale, int(zero_point))


def quantized_input_range(spec: TensorSpec) -> TensorSpec:
    """An input with the range its quantization can hold as its value_range (what the
    publisher writes: the function refuses values outside it rather than clip them)."""
    representable = spec.representable_range()
    if representable is None or spec.value_range is not None:
        return spec
    low, high = (float(np.float32(v)) for v in representable)
    return TensorSpec(
        spec.key, spec.tensor, spec.dtype, spec.shape, spec.scale, spec.zero_point, (low, high)
    )


def read_signatures(interpreter: Any) -> dict[str, Signature]:
    """Every signature of the model an interpreter holds; a model without any gets
    DEFAULT_SIGNATURE from its graph's inputs and outputs. ValueError for what cannot be
    served (string tensors, per-axis quantized inputs or outputs, no input or output)."""
    listed = interpreter.get_signature_list()
    if len(listed) > MAX_SIGNATURES:
        raise ValueError(f"the model has {len(listed)} signatures; at most {MAX_SIGNATURES}")
    signatures = {}
    for key in sorted(listed):
        runner = interpreter.get_signature_runner(key)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        signatures[key] = _signature(key, inputs, outputs)
    if not signatures:
        inputs = {d["name"]: d for d in interpreter.get_input_details()}
        outputs = {d["name"]: d for d in interpreter.get_output_details()}
        signatures[DEFAULT_SIGNATURE] = _signature(DEFAULT_SIGNATURE, inputs, outputs)
    return signatures


def _signature(key: str, inputs: dict, outputs: dict) -> Signature:
    where = f"signature '{key}'"
    if not inputs or not outputs:
        raise ValueError(f"{where} has {len(inputs)} inputs and {len(outputs)} outputs")
    for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
        if len(tensors) > MAX_TENSORS:
            raise ValueError(f"{where} has {len(tensors)} {kind}; at most {MAX_TENSORS}")
    return Signature(
        key,
        tuple(
            quantized_input_range(tensor_from_details(k, inputs[k], f"{where} input"))
            for k in sorted(inputs)
        ),
        tuple(tensor_from_details(k, outputs[k], f"{where} output") for k in sorted(outputs)),
    )


def zero_inputs(signature: Signature) -> dict[str, np.ndarray]:
    """One instance of zeros per input (any-size dimensions 1), in each input's own dtype: what
    the publisher and a model load run once to see that the model runs."""
    return {
        spec.key: np.zeros([1 if d == -1 else d for d in spec.shape], spec.dtype)
        for spec in signature.inputs
    }


def default_signature(signatures: dict[str, Any]) -> str:
    """DEFAULT_SIGNATURE, or the only signature a model has."""
    if DEFAULT_SIGNATURE in signatures or len(signatures) != 1:
        return DEFAULT_SIGNATURE
    return next(iter(signatures))


# -- from a manifest (strict: a registry document is hostile until read) -----------------------


def fields(document: Any, where: str, required: tuple, optional: tuple = ()) -> dict[str, Any]:
    """`document` as an object with these fields and no other; a ValueError names the field."""
    if not isinstance(document, dict):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(document) - set(required) - set(optional))
    if unknown:
        raise ValueError(
            f"{where}: unknown field '{unknown[0][:60]}'; allowed: "
            + ", ".join((*required, *optional))
        )
    missing = [f for f in required if f not in document]
    if missing:
        raise ValueError(f"{where}: missing field '{missing[0]}'")
    return document


def name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or not value.isprintable():
        raise ValueError(f"{where} must be a printable string of 1 to {MAX_NAME} characters")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer from {low} to {high}")
    return value


def number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number")
    return float(value)


def parse_tensor(key: str, document: Any, where: str, is_input: bool) -> TensorSpec:
    optional = ("value_range",) if is_input else ()
    doc = fields(document, where, ("name", "shape", "dtype", "quantization"), optional)
    tensor = name(doc["name"], f"{where}.name")
    dtype = doc["dtype"]
    if dtype not in DTYPES:
        raise ValueError(f"{where}.dtype must be one of {', '.join(DTYPES)}")
    shape = doc["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_RANK:
        raise ValueError(f"{where}.shape must be a list of at most {MAX_RANK} dimensions")
    dims = tuple(integer(d, f"{where}.shape", -1, MAX_DIM) for d in shape)
    if 0 in dims:
        raise ValueError(f"{where}.shape: a dimension is -1 (any size) or at least 1")
    quantization = fields(doc["quantization"], f"{where}.quantization", ("scale", "zero_point"))
    scale = number(quantization["scale"], f"{where}.quantization.scale")
    if scale < 0 or (scale > 0 and dtype not in QUANTIZABLE):
        raise ValueError(
            f"{where}.quantization.scale must be 0, or > 0 for {', '.join(QUANTIZABLE)} tensors"
        )
    bounds = np.iinfo(dtype) if scale > 0 else None
    zero_point = integer(
        quantization["zero_point"],
        f"{where}.quantization.zero_point",
        int(bounds.min) if bounds else 0,
        int(bounds.max) if bounds else 0,
    )
    spec = TensorSpec(key, tensor, dtype, dims, scale, zero_point)
    if "value_range" in doc:
        spec = TensorSpec(
            key,
            tensor,
            dtype,
            dims,
            scale,
            zero_point,
            value_range(doc["value_range"], spec, where),
        )
    return spec


def value_range(document: Any, spec: TensorSpec, where: str) -> tuple[float, float]:
    """[low, high], finite, low < high, for a float or quantized input (within what its
    quantization can hold, to half a step)."""
    where = f"{where}.value_range"
    if not isinstance(document, list) or len(document) != 2:
        raise ValueError(f"{where} must be [low, high]")
    low, high = (number(v, where) for v in document)
    if not low < high:
        raise ValueError(f"{where}: low must be below high")
    if spec.served_dtype not in ("float32", "float16"):
        raise ValueError(f"{where}: only float and quantized inputs have a value range")
    representable = spec.representable_range()
    if representable is not None:
        slack = spec.scale / 2
        if low < representable[0] - slack or high > representable[1] + slack:
            raise ValueError(
                f"{where} [{low:g}, {high:g}] lies outside what the quantization holds "
                f"[{representable[0]:g}, {representable[1]:g}]"
            )
    return low, high


def parse_signatures(document: Any, where: str = "signatures") -> dict[str, Signature]:
    if not isinstance(document, dict) or not 1 <= len(document) <= MAX_SIGNATURES:
        raise ValueError(f"{where} must be an object of 1 to {MAX_SIGNATURES} signatures")
    signatures = {}
    for key, entry in sorted(document.items()):
        here = f"{where}.{name(key, f'{where} key')}"
        doc = fields(entry, here, ("inputs", "outputs"))
        tensors = {}
        for kind in ("inputs", "outputs"):
            listed = doc[kind]
            if not isinstance(listed, dict) or not 1 <= len(listed) <= MAX_TENSORS:
                raise ValueError(f"{here}.{kind} must be an object of 1 to {MAX_TENSORS} tensors")
            tensors[kind] = tuple(
                parse_tensor(
                    name(k, f"{here}.{kind} key"), listed[k], f"{here}.{kind}.{k}", kind == "inputs"
                )
                for k in sorted(listed)
            )
        signatures[key] = Signature(key, tensors["inputs"], tensors["outputs"])
    return signatures


def mismatch(model: dict[str, Signature], manifest: dict[str, Signature]) -> str | None:
    """How the model's own signatures differ from its manifest's, or None. A manifest's value
    range is its own (the model has none); everything else must be the same."""
    if sorted(model) != sorted(manifest):
        return f"the model's signatures are {sorted(model)}, the manifest lists {sorted(manifest)}"
    for key, signature in model.items():
        listed = manifest[key]
        for kind in ("inputs", "outputs"):
            ours, theirs = getattr(signature, kind), getattr(listed, kind)
            if [t.key for t in ours] != [t.key for t in theirs]:
                return (
                    f"signature '{key}' {kind} are {[t.key for t in ours]}, the manifest lists "
                    f"{[t.key for t in theirs]}"
                )
            for actual, expected in zip(ours, theirs, strict=True):
                if (actual.tensor, actual.dtype, actual.shape, actual.zero_point) != (
                    expected.tensor,
                    expected.dtype,
                    expected.shape,
                    expected.zero_point,
                ) or not math.isclose(actual.scale, expected.scale, rel_tol=1e-6, abs_tol=1e-12):
                    return (
                        f"signature '{key}' {kind[:-1]} '{actual.key}' is {actual.manifest()}, "
                        f"the manifest says {expected.manifest()}"
                    )
    return None
