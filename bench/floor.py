"""The floor: only the unavoidable work on the same API Gateway event.

Cold start: import numpy, LiteRT and boto3, fetch the model from S3, build the interpreter.
Request: decode the body, make the input tensor, one invoke, encode the answer. No manifest, no
checksum, no validation, no logging or metrics: what no serving code can avoid doing.
"""

from __future__ import annotations

import boto3
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from bench.baseline import answer, read_instances


def s3_client():
    return boto3.client("s3")


def fetch(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


class Floor:
    def __init__(self, model: bytes):
        self.interpreter = Interpreter(model_content=model)
        self.interpreter.allocate_tensors()
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self.input_index, self.output_index = inp["index"], out["index"]
        self.input_dtype = inp["dtype"]
        self.input_scale, self.input_zero = inp["quantization"]
        self.output_scale, self.output_zero = out["quantization"]
        self.shape = tuple(int(d) for d in inp["shape"][1:])
        self.batch = int(inp["shape"][0])

    def handler(self, event: dict, context=None) -> dict:
        x = read_instances(event).reshape(-1, *self.shape)
        if self.input_scale:
            x = np.round(x / self.input_scale) + self.input_zero
        tensor = x.astype(self.input_dtype)
        if len(tensor) != self.batch:
            self.interpreter.resize_tensor_input(self.input_index, list(tensor.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(tensor)
        self.interpreter.set_tensor(self.input_index, tensor)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.output_index)
        probabilities = raw.astype(np.float32)
        if self.output_scale:
            probabilities = (probabilities - self.output_zero) * np.float32(self.output_scale)
        return answer(probabilities)
