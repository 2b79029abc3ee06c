"""The floor: only the unavoidable work on the same API Gateway event.

Cold start: import numpy, LiteRT and boto3, fetch the model from S3, build the interpreter.
Request: decode the body, make the input tensor, one invoke, encode the answer. No manifest, no
checksum, no validation, no logging or metrics: what no serving code can avoid doing.
(bench/lean_floor.py: the same with obstore instead of boto3.)
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bench.baseline import answer, read_instances
from mlcore.tensors import dequantize, quantization, quantize


def s3_client():
    import boto3  # timed with the client (the "s3_client" phase), as obstore in the lean floor

    return boto3.client("s3")


def fetch(s3, bucket: str, key: str, folder: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()  # kept in memory, not in folder


LOAD_PHASE = "interpreter_build"


def load(model: bytes, variant: str):
    return Floor(model).handler


class Floor:
    def __init__(self, model: bytes):
        self.interpreter = Interpreter(model_content=model)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch, *self.shape = (int(d) for d in self.input["shape"])
        self.input_quantization = quantization(self.input)
        self.output_quantization = quantization(self.output)

    def handler(self, event: dict, context=None) -> dict:
        return answer(self.run(read_instances(event).reshape(-1, *self.shape)))

    def run(self, x: np.ndarray) -> np.ndarray:
        """Probabilities of a batch of instances in the input's shape (real values)."""
        tensor = quantize(x, *self.input_quantization, self.input["dtype"])
        if len(tensor) != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], list(tensor.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(tensor)
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.output["index"])
        return dequantize(raw, *self.output_quantization)
