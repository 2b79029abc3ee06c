"""One warm execution environment: `python bench/worker.py VARIANT FD CONFIG`.

Loads its variant once (as a Lambda execution environment would), answers one request to get
past the cold start, then obeys JSON-line commands on stdin, replying on file descriptor FD:

  {"op": "run", "batch": "32", "n": 5}     -> {"ns": [...]}  handler wall time per request
  {"op": "answer", "batch": "32"}          -> {"status": 200, "labels": [...]}
  {"op": "profile", "batch": "1", "n": 500, "out": PATH}  pyinstrument text report to PATH
  {"op": "quit"}

Each timed call is exactly `handler(event, context)`: API Gateway event in, response out.
"""

import copy
import json
import os
import sys
import time


class Context:
    function_name = "InferenceFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = "1024"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:InferenceFunction"
    log_group_name = "/aws/lambda/InferenceFunction"
    log_stream_name = "bench"
    client_context = None
    identity = None

    def __init__(self, number: int):
        self.aws_request_id = f"00000000-0000-0000-0000-{number:012d}"

    def get_remaining_time_in_millis(self):
        return 30000


def load(variant: str, config: dict):
    if variant in ("ours", "ours_untraced", "before", "before_untraced"):
        sys.path.insert(
            0,
            config["function_dir"]
            if not variant.startswith("before")
            else config["baseline_function_dir"],
        )
        import app

        return app.lambda_handler
    sys.path.insert(0, config["root"])
    if variant == "floor":
        from bench import floor

        return floor.Floor(
            floor.fetch(floor.s3_client(), config["bucket"], config["model_key"])
        ).handler
    if variant in ("seed", "seed_predict"):
        from bench import seed

        path = os.path.join(config["cache_dir"], "model.keras")
        seed.fetch(seed.s3_client(), config["bucket"], config["keras_key"], path)
        return seed.Seed(path, use_predict=variant == "seed_predict").handler
    raise ValueError(f"unknown variant {variant!r}")


def main() -> None:
    variant, fd, config_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(config_path) as f:
        config = json.load(f)
    with open(config["events_path"]) as f:
        events = json.load(f)
    handler = load(variant, config)
    counter = 0
    for event in events.values():  # cold start, and each batch shape once (interpreter resize)
        counter += 1
        handler(copy.copy(event), Context(counter))

    def reply(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(fd, data) :]

    reply({"ready": True, "pid": os.getpid()})
    perf = time.perf_counter_ns
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "quit":
            break
        event = events[command["batch"]]
        if op == "run":
            durations = []
            for _ in range(command["n"]):
                counter += 1
                request, context = copy.copy(event), Context(counter)
                started = perf()
                response = handler(request, context)
                durations.append(perf() - started)
                if response["statusCode"] != 200:
                    reply({"error": response["body"][:500]})
                    break
            else:
                reply({"ns": durations})
        elif op == "answer":
            response = handler(copy.copy(event), Context(0))
            body = json.loads(response["body"])
            reply(
                {
                    "status": response["statusCode"],
                    "labels": [p.get("label") for p in body.get("predictions", [])],
                    "error": body.get("code"),
                }
            )
        elif op == "profile":
            try:
                from pyinstrument import Profiler
            except ImportError:  # running with python -S on the Lambda-like path
                import site

                site.main()
                from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
            for _ in range(command["n"]):
                counter += 1
                handler(copy.copy(event), Context(counter))
            profiler.stop()
            with open(command["out"], "w") as f:
                f.write(profiler.output_text(unicode=False, color=False, show_all=False))
            reply({"done": True})
    os.close(fd)


if __name__ == "__main__":
    main()
