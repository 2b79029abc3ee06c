"""One execution environment for the batch section (bench/batch.py):
`python bench/batch_child.py batch|api CONFIG`.

batch: batch.handle (the batch function's handler body, under its Lambda decorators) loads the
job's model with a Job event, then answers ScoreBatch events of the keys the parent names: each
one reads its objects from the bench's S3, predicts, and writes its records file.
api: app.lambda_handler answers POST /predict as an HTTP API (payload format 2.0) sends it, one
image per request, the same images.

Commands on stdin, one JSON line each, answered on the original stdout (the handlers' own
logs go to stderr, the child's log file):
  {"keys": [...]}            batch: one ScoreBatch of these keys -> {"ns": wall ns, "answered": n}
  {"images": N, "n": k}      api: k requests of image N.. N+k-1 -> {"ns": [per request]}
"""

import base64
import json
import os
import sys
import time


class Context:
    """What the handlers read of Lambda's context: a minute left, whatever the clock."""

    function_name = "BatchFunction"
    aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def main() -> None:
    mode, config_path = sys.argv[1], sys.argv[2]
    config = json.loads(open(config_path).read())
    answers = os.fdopen(os.dup(1), "w")  # the parent's channel
    os.dup2(2, 1)  # Powertools' log lines and EMF documents: to the log
    sys.path.insert(0, config["function_dir"])
    context = Context()
    if mode == "batch":
        import batch

        job = {"input_prefix": "input/", "output_prefix": "results/", "version": "latest"}
        loaded = batch.lambda_handler(
            {"action": "load_model", "execution": "bench", "job": job}, context
        )
        sizes = config["sizes"]
    else:
        import app

        with open(config["http_event"]) as f:
            template = json.load(f)
        images = [base64.b64decode(i) for i in config["images_b64"]]
    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        command = json.loads(line)
        if mode == "batch":
            items = [{"Key": k, "Size": sizes[k]} for k in command["keys"]]
            event = {
                "Items": items,
                "BatchInput": {"model": loaded["model"], "results_prefix": "results/bench/"},
            }
            start = time.perf_counter_ns()
            summary = batch.lambda_handler(event, context)
            reply = {"ns": time.perf_counter_ns() - start, "answered": summary["answered"]}
        else:
            times, labels = [], []
            for i in range(command["images"], command["images"] + command["n"]):
                body = json.dumps({"images": [base64.b64encode(images[i]).decode()]})
                event = {**template, "body": body, "isBase64Encoded": False}
                start = time.perf_counter_ns()
                response = app.lambda_handler(event, context)
                times.append(time.perf_counter_ns() - start)
                labels.append(json.loads(response["body"])["predictions"][0]["label"])
            reply = {"ns": times, "labels": labels}
        answers.write(json.dumps(reply) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
