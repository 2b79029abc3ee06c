"""The seed's path: its serving code behind the same API Gateway event.

Cold start: import TensorFlow, download the float Keras model (model.keras) from S3, load it.
Request: the body decoded with the standard library, prediction through a `@tf.function` around
the float Keras model (or `model.predict`, the second row), the answer encoded as JSON.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import boto3  # noqa: E402
import tensorflow as tf  # noqa: E402

from bench.baseline import answer, read_instances  # noqa: E402


def s3_client():
    return boto3.client("s3")


def fetch(s3, bucket: str, key: str, folder: str) -> str:
    path = os.path.join(folder, "model.keras")
    s3.download_file(bucket, key, path)
    return path


LOAD_PHASE = "model_load"


def load(path: str, variant: str):
    return Seed(path, use_predict=variant == "seed_predict").handler


class Seed:
    def __init__(self, path: str, use_predict: bool = False):
        self.model = tf.keras.models.load_model(path)
        self.use_predict = use_predict
        shape = [None, *self.model.input_shape[1:]]

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
        def serve(x):
            return self.model(x, training=False)

        self.serve = serve

    def handler(self, event: dict, context=None) -> dict:
        x = read_instances(event).reshape(-1, *self.model.input_shape[1:])
        if self.use_predict:
            probabilities = self.model.predict(x, verbose=0)
        else:
            probabilities = self.serve(x).numpy()
        return answer(probabilities)
