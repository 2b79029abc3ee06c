"""One cold start in a fresh process: `python bench/cold_child.py VARIANT FD CONFIG`.

From its first statement to the first answered request, timing each phase; writes one JSON
line (the answer and the phase breakdown, CLOCK_MONOTONIC ns) to file descriptor FD. Imports
only os/sys/time/json before the variant's own imports, so no variant pays for the bench.
"""

import time

T0 = time.monotonic_ns()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

PHASES: dict[str, float] = {}
VARIANT = ""


def mark(name: str, start: int) -> int:
    now = time.monotonic_ns()
    PHASES[name] = PHASES.get(name, 0.0) + (now - start) / 1e6
    return now


def timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.monotonic_ns()
        try:
            return function(*args, **kwargs)
        finally:
            mark(name, start)

    return wrapper


class Context:
    aws_request_id = "00000000-0000-0000-0000-000000000001"
    function_name = "InferenceFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = "1024"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InferenceFunction"
    log_group_name = "/aws/lambda/InferenceFunction"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return 30000


def ours(config: dict, event: dict) -> dict:
    sys.path.insert(
        0,
        config["function_dir"]
        if not VARIANT.startswith("before")
        else config["baseline_function_dir"],
    )
    start = time.monotonic_ns()
    if VARIANT == "whatif_no_boto3":
        # What-if: no boto3/botocore at all. X-Ray patches no library (patching botocore imports
        # it; patching http.client imports urllib3): the store's own subsegments time the S3
        # reads. The store gets a stdlib SigV4 client (bench/s3lite.py).
        from aws_lambda_powertools.tracing import tracer as tracer_module

        original_tracer_init = tracer_module.Tracer.__init__

        def tracer_init(self, *args, **kwargs):
            kwargs.setdefault("auto_patch", False)
            original_tracer_init(self, *args, **kwargs)

        tracer_module.Tracer.__init__ = tracer_init
    import app  # the handler module, as the Lambda runtime imports it

    start = mark("imports", start)
    # Attribution only: wrap the store's steps (a few microseconds each).
    import model_store

    if VARIANT == "whatif_no_boto3":
        sys.path.insert(0, config["root"])

        def create_s3_client():
            from bench.s3lite import S3Lite

            return S3Lite()

        model_store.create_s3_client = create_s3_client
    model_store.create_s3_client = timed("s3_client", model_store.create_s3_client)
    store_class = model_store.ModelStore
    store_class._read_json = timed("registry_read", store_class._read_json)
    store_class._download = timed("model_fetch_and_hash", store_class._download)
    original_init = store_class.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._build_predictor = timed("interpreter_build", self._build_predictor)

    store_class.__init__ = init
    start = time.monotonic_ns()
    response = app.lambda_handler(event, Context())
    handler_ms = (time.monotonic_ns() - start) / 1e6
    model = app.get_store().current
    if model is not None:
        PHASES["verify"] = model.timings_ms["verify"]
        PHASES["warmup_invoke"] = model.timings_ms["build"] - PHASES.get("interpreter_build", 0.0)
    PHASES["first_request"] = handler_ms - sum(
        PHASES.get(k, 0.0)
        for k in (
            "s3_client",
            "registry_read",
            "model_fetch_and_hash",
            "verify",
            "interpreter_build",
            "warmup_invoke",
        )
    )
    return response


def floor(config: dict, event: dict) -> dict:
    sys.path.insert(0, config["root"])
    start = time.monotonic_ns()
    from bench import floor as floor_module  # numpy, LiteRT, boto3

    start = mark("imports", start)
    s3 = floor_module.s3_client()
    start = mark("s3_client", start)
    model = floor_module.fetch(s3, config["bucket"], config["model_key"])
    start = mark("model_fetch", start)
    served = floor_module.Floor(model)
    start = mark("interpreter_build", start)
    response = served.handler(event, Context())
    mark("first_request", start)
    return response


def seed(config: dict, event: dict) -> dict:
    sys.path.insert(0, config["root"])
    start = time.monotonic_ns()
    from bench import seed as seed_module  # TensorFlow, numpy, boto3

    start = mark("imports", start)
    s3 = seed_module.s3_client()
    start = mark("s3_client", start)
    path = os.path.join(config["cache_dir"], "model.keras")
    seed_module.fetch(s3, config["bucket"], config["keras_key"], path)
    start = mark("model_fetch", start)
    served = seed_module.Seed(path)
    start = mark("model_load", start)
    response = served.handler(event, Context())  # the first call traces the tf.function
    mark("first_request", start)
    return response


def main() -> None:
    global VARIANT
    variant, fd, config_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    VARIANT = variant
    with open(config_path) as f:
        config = json.load(f)
    with open(config["event_path"]) as f:
        event = json.load(f)
    PHASES["bench_setup"] = (time.monotonic_ns() - T0) / 1e6
    response = {
        "ours": ours,
        "ours_untraced": ours,
        "before": ours,
        "ours_nopyc": ours,
        "whatif_no_boto3": ours,
        "floor": floor,
        "seed": seed,
    }[variant](config, event)
    answered = time.monotonic_ns()
    body = json.loads(response["body"])
    message = {
        "t0": T0,
        "answered": answered,
        "status": response["statusCode"],
        "labels": [p.get("label") for p in body.get("predictions", [])],
        "error": body.get("code"),
        "phases_ms": {k: round(v, 3) for k, v in PHASES.items()},
    }
    os.write(fd, (json.dumps(message) + "\n").encode())
    os.close(fd)


if __name__ == "__main__":
    main()
