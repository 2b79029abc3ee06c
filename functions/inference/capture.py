"""Opt-in capture of requests for retraining (template parameter CaptureSampleRate, default 0:
nothing is kept).

A sampled request's inputs, as the model saw them (the prepared tensor: pixel values 0..255 in
the model's input shape, grey or RGB), are written as PNG images, then its answers as one JSON
document, to the capture bucket the stack creates (never the registry bucket):

    s3://CAPTURE_BUCKET/CAPTURE_PREFIX/NAME/VERSION/date=YYYY-MM-DD/REQUEST-I.png
    s3://CAPTURE_BUCKET/CAPTURE_PREFIX/NAME/VERSION/date=YYYY-MM-DD/REQUEST.json

(REQUEST: API Gateway's request id; I: the input's index; the JSON is written last and names
the images.) The bucket's lifecycle deletes everything after CaptureRetentionDays. A person
sorts images into class folders (``captures-labelled/NAME/LABEL/*.png``) and trains on them:
``make train DATASET=s3://BUCKET/captures-labelled/NAME/``.

Costs: an unsampled request pays one random draw (nothing at all when the rate is 0). A sampled
one pays its writes (at most MAX_INPUTS images and the JSON, each bounded by the client's
timeouts, PUT_SECONDS at most; no write starts unless the invocation has that much time left
before Lambda's timeout, less the answer's margin). A failed write raises CaptureFailed; the
caller counts it and answers the request as if nothing happened.
"""

from __future__ import annotations

import io
import json
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mlcore.deadline import Deadline

MAX_INPUTS = 8  # images kept per sampled request (the first ones of its batch)
CLIENT_CONNECT_TIMEOUT = 1
CLIENT_READ_TIMEOUT = 1
PUT_SECONDS = CLIENT_CONNECT_TIMEOUT + CLIENT_READ_TIMEOUT  # the longest one write may take


class CaptureFailed(Exception):
    """The capture could not be written (completely); the request is not affected."""


def create_s3_client() -> Any:
    """boto3 (in the Lambda runtime), one attempt per write with short timeouts: a capture is
    worth less than the request's latency."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CLIENT_CONNECT_TIMEOUT,
        read_timeout=CLIENT_READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return boto3.client("s3", config=config)


def png(image: np.ndarray) -> bytes:
    """One input (H, W, C) of pixel values 0..255 -> PNG bytes (grey for one channel)."""
    from PIL import Image

    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


class Capture:
    """Decides which requests are sampled (``sampled()``) and writes them (``write(...)``)."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        rate: float,
        client_factory: Callable[[], Any] = create_s3_client,
        draw: Callable[[], float] = random.random,
        now: Callable[[], float] = time.time,
    ):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.rate = rate
        self._client_factory = client_factory
        self._client: Any = None
        self._draw = draw
        self._now = now

    def sampled(self) -> bool:
        """Whether this request is kept: with probability `rate` (never when it is 0)."""
        return self.rate > 0.0 and self._draw() < self.rate

    def folder(self, name: str, version: int) -> str:
        day = time.strftime("%Y-%m-%d", time.gmtime(self._now()))
        parts = (self.prefix, name, str(version), f"date={day}")
        return "/".join(p for p in parts if p) + "/"

    def write(
        self,
        name: str,
        version: int,
        request_id: str,
        batch: np.ndarray,
        answers: list[dict[str, Any]],
        deadline: Deadline,
    ) -> list[str]:
        """The request's first MAX_INPUTS inputs as PNG, then the JSON; the keys written.
        CaptureFailed when a write fails or `deadline` (the invocation's time left) leaves no
        time for the next one."""
        folder = self.folder(name, version)
        images = [f"{folder}{request_id}-{i}.png" for i in range(min(len(batch), MAX_INPUTS))]
        document = {
            "model": {"name": name, "version": version},
            "request_id": request_id,
            "captured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._now())),
            "inputs": len(batch),
            "images": [key.rsplit("/", 1)[1] for key in images],
            "answers": answers[: len(images)],
        }
        writes = [(key, png(batch[i]), "image/png") for i, key in enumerate(images)]
        writes.append(
            (f"{folder}{request_id}.json", json.dumps(document).encode(), "application/json")
        )
        written: list[str] = []
        for key, body, content_type in writes:
            if deadline.remaining() < PUT_SECONDS:
                raise CaptureFailed(
                    f"stopped after {len(written)} of {len(writes)} objects: the invocation's "
                    "deadline is near"
                )
            try:
                if self._client is None:
                    self._client = self._client_factory()
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    ServerSideEncryption="AES256",
                )
            except Exception as exc:  # S3 refused, unreachable, no permission, ...
                raise CaptureFailed(
                    f"s3://{self.bucket}/{key}: {type(exc).__name__}: {exc}"
                ) from None
            written.append(key)
        return written
