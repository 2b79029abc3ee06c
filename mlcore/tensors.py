"""Real values <-> a TFLite tensor's storage type, with the tensor's own quantization."""

from __future__ import annotations

from typing import Any

import numpy as np


def quantize(values: np.ndarray, scale: float, zero_point: int, dtype: Any) -> np.ndarray:
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


def quantization(details: dict[str, Any]) -> tuple[float, int]:
    """(scale, zero_point) of an interpreter's tensor details."""
    scale, zero_point = details["quantization"]
    return float(scale), int(zero_point)


def tensor_spec(details: dict[str, Any]) -> dict[str, Any]:
    """The manifest's description of a tensor, from the interpreter's details."""
    scale, zero_point = quantization(details)
    return {
        "name": details["name"],
        "shape": [int(d) for d in details["shape_signature"]],
        "dtype": np.dtype(details["dtype"]).name,
        "quantization": {"scale": scale, "zero_point": zero_point},
    }
