"""Measure 3: the quantization modes side by side.

Bytes, accuracy on the same test split, and interpreter invoke time (interleaved)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bench.common import rotations, summary_ms
from mlcore.tensors import quantization, quantize

LABEL = {
    "none": "float32",
    "float16": "float16",
    "dynamic": "dynamic (int8 weights)",
    "int8": "int8 (full integer)",
}


def invoker(path: Path, x: np.ndarray):
    """set_tensor + invoke + get_tensor on a ready input tensor: the interpreter's own time."""
    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
    interpreter.allocate_tensors()
    tensor = quantize(x.astype(np.float32), *quantization(inp), inp["dtype"])

    def call():
        interpreter.set_tensor(inp["index"], tensor)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return call


def run(modes_dir: Path, prepared: dict, x_test: np.ndarray, rounds: int, per_round: int) -> dict:
    batches = {"1": x_test[:1], "256": x_test[:256]}
    calls = {
        (m, b): invoker(modes_dir / f"{m}.tflite", x) for m in LABEL for b, x in batches.items()
    }
    samples: dict[tuple[str, str], list[int]] = {key: [] for key in calls}
    for call in calls.values():
        call()
    for _, order in rotations(list(calls), rounds):
        for key in order:
            for _ in range(per_round if key[1] == "1" else max(1, per_round // 4)):
                started = time.perf_counter_ns()
                calls[key]()
                samples[key].append(time.perf_counter_ns() - started)
    float_bytes = prepared["modes"]["none"]["bytes"]
    keras_accuracy = prepared["keras_float_accuracy"]
    table = {}
    for mode, label in LABEL.items():
        info = prepared["modes"][mode]
        table[mode] = {
            "label": label,
            "bytes": info["bytes"],
            "bytes_vs_float32": round(info["bytes"] / float_bytes, 4),
            "accuracy": info["accuracy"],
            "accuracy_drop_points_vs_keras_float": round(
                (keras_accuracy - info["accuracy"]) * 100, 3
            ),
            "invoke_batch1": summary_ms(samples[(mode, "1")]),
            "invoke_batch256": summary_ms(samples[(mode, "256")]),
        }
    return {
        "test_size": prepared["test_size"],
        "keras_float_accuracy": keras_accuracy,
        "modes": table,
    }
