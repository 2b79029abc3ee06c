"""Measure: batch jobs against the HTTP API, the same images (docs/batch.md, "Cost").

Two execution environments side by side on the Lambda-like path (the built function package
and layer, Lambda's Python): the batch function answering ScoreBatch events of BatchSize keys
(each object read from the bench's S3 on loopback, predicted, its records file written), and
the inference function answering POST /predict as an HTTP API (payload format 2.0) sends it,
one image per request, as a client looping over a folder would. Rounds alternate between the
two, so both see the same machine noise. The figure: images per second per concurrent
environment (one batch function environment scores BatchSize images per invocation; one API
environment answers one request at a time), and from the same durations the cost per million
images (bench/cost.py: Lambda, Step Functions' child executions and state transitions, S3
requests; the HTTP API's requests).

Loopback S3 answers a GET in well under a millisecond; S3 itself takes tens of milliseconds,
which the function's 8 parallel reads hide only in part: on AWS a batch takes longer than here.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from pathlib import Path

import numpy as np

from bench import cost
from bench.common import ROOT, summary_ms

INPUT_BUCKET, OUTPUT_BUCKET = "bench-batch-in", "bench-batch-out"
HTTP_EVENT = ROOT / "events" / "http-predict-image.json"


def parameters() -> dict[str, str]:
    """The template parameters of the batch function's buckets for function_environment."""
    return {
        "BatchInputBucketName": INPUT_BUCKET,
        "BatchOutputBucketName": OUTPUT_BUCKET,
        "BatchInputPrefix": "input",
        "BatchOutputPrefix": "results",
    }


def digit_pngs(count: int) -> list[bytes]:
    """Held-out-like digits as people send them: black ink on white, PNG."""
    from PIL import Image

    digits = np.load(ROOT / "tests" / "fixtures" / "mnist" / "digits.npz")["x"]
    images = []
    for i in range(count):
        buffer = io.BytesIO()
        Image.fromarray(255 - digits[i % len(digits)].astype(np.uint8)).save(buffer, "PNG")
        images.append(buffer.getvalue())
    return images


class Environment:
    """One child (bench/batch_child.py) and its JSON-lines channel."""

    def __init__(self, mode: str, config: Path, env: dict, python: list[str], log: Path):
        self.log = log
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [*python, str(ROOT / "bench" / "batch_child.py"), mode, str(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=str(ROOT),
                text=True,
            )
        self.read()  # its model is loaded

    def read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{self.log.name}: exited: {' | '.join(tail)}")
        return json.loads(line)

    def ask(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run(
    s3,
    function_dir: Path,
    env: dict,
    python: list[str],
    work: Path,
    sizes: list[int],
    rounds: int,
    memory_mb: int,
    log,
) -> dict:
    """Per batch size: the batch environment's seconds per batch and images per second beside
    the API environment's on as many images, and the cost per million images of each."""
    largest = max(sizes)
    images = digit_pngs(largest)
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    keys = [f"input/{i:05d}.png" for i in range(largest)]
    for key, image in zip(keys, images, strict=True):
        s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=image)
    config = work / "batch-config.json"
    config.write_text(
        json.dumps(
            {
                "function_dir": str(function_dir),
                "sizes": {k: len(i) for k, i in zip(keys, images, strict=True)},
                "http_event": str(HTTP_EVENT),
                "images_b64": [base64.b64encode(i).decode() for i in images],
            }
        )
    )
    request_bytes = len(json.dumps({"images": [base64.b64encode(images[0]).decode()]}))
    batch_env = Environment("batch", config, env, python, work / "batch-function.log")
    try:
        api_env = Environment("api", config, env, python, work / "batch-api.log")
    except BaseException:
        batch_env.close()
        raise
    results: dict = {"memory_mb": memory_mb, "request_bytes": request_bytes, "sizes": {}}
    try:
        for size in sizes:
            batch_ns, api_ns, answered = [], [], 0
            for _ in range(rounds):
                reply = batch_env.ask({"keys": keys[:size]})
                batch_ns.append(reply["ns"])
                answered = reply["answered"]
                api_ns += api_env.ask({"images": 0, "n": size})["ns"]
            batch_ms = summary_ms(batch_ns)
            api_ms = summary_ms(api_ns)
            row = {
                "answered": answered,
                "batch_ms": batch_ms,
                "api_request_ms": api_ms,
                "images_per_second": {
                    "batch": round(size / batch_ms["p50_ms"] * 1000, 1),
                    "http_api": round(1000 / api_ms["p50_ms"], 1),
                },
                "per_million_images_usd": {
                    "batch": cost.batch_per_million_images(batch_ms["p50_ms"], size, memory_mb),
                    "http_api": cost.api_per_million_images(
                        api_ms["p50_ms"], memory_mb, request_bytes
                    ),
                },
            }
            row["throughput_ratio_batch_vs_api"] = round(
                row["images_per_second"]["batch"] / row["images_per_second"]["http_api"], 3
            )
            results["sizes"][str(size)] = row
            log(
                f"  batch of {size}: {row['images_per_second']['batch']} images/s per environment "
                f"(HTTP API {row['images_per_second']['http_api']}), per million images "
                f"${row['per_million_images_usd']['batch']['total']} "
                f"(HTTP API ${row['per_million_images_usd']['http_api']['total']})"
            )
    finally:
        batch_env.close()
        api_env.close()
    results["prices"] = {"read_on": cost.PRICES["read_on"], "region": cost.PRICES["region"]}
    return results
