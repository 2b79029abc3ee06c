"""One execution environment of one variant:
`python bench/child.py VARIANT FD CONFIG cold|warm|largest-batch`.

From its first statement to the first answered request it times each phase, and sends the
answer and the phase breakdown (CLOCK_MONOTONIC ns) on the socket FD, framed as the local
runner frames its messages (local.bootstrap). A warm one then serves the parent's commands:

  {"op": "run", "batch": "32", "n": 5}     -> {"ns": [...]}  handler wall time per request
  {"op": "answer", "batch": "32"}          -> {"status": 200, "labels": [...]}
  {"op": "profile", "batch": "1", "n": 500, "out": PATH}  pyinstrument text report to PATH

until the parent closes the socket. A largest-batch one answers one request of the largest
batch the template allows (MaxInstances), then exits; both report their peak memory last.
Each timed call is exactly `handler(event, context)`.

Every variant pays the same for the bench: only time/json/sys are imported before the variant's
own imports, and the first answer goes out with `os.write` on the raw descriptor (the framing of
local.bootstrap, written out here). The bench's socket and message helpers are imported only
after that answer: imported before it, they cost a variant whatever of socket, logging,
traceback and uuid it had not imported itself, about 6 ms for the lean floor (bench_setup 17.0
against ours 10.8 ms, 2026-12-01) and nothing for a function that imports them anyway.
"""

import time

T0 = time.monotonic_ns()

import json  # noqa: E402
import sys  # noqa: E402

PHASES: dict[str, float] = {}


def mark(name: str, start: int) -> int:
    now = time.monotonic_ns()
    PHASES[name] = PHASES.get(name, 0.0) + (now - start) / 1e6
    return now


# The model load's steps (ms), wherever they ran: in the store's thread, during the imports or
# the first request. Not serial phases: reported as load.NAME beside them, with `began` and
# `ended`, ms from the start of `import app` to the first step's start and the last one's end.
LOAD: dict[str, float] = {}
LOAD_SPAN: dict[str, int] = {}


def load_timed(name, function):
    def wrapper(*args, **kwargs):
        start = time.monotonic_ns()
        LOAD_SPAN.setdefault("began", start)
        try:
            return function(*args, **kwargs)
        finally:
            LOAD_SPAN["ended"] = now = time.monotonic_ns()
            LOAD[name] = LOAD.get(name, 0.0) + (now - start) / 1e6

    return wrapper


def ours(config: dict, variant: str, imported: bool = False):
    """app.lambda_handler, imported as the Lambda runtime imports it (`imported`: already).

    Attribution only: the store's steps are wrapped (a few microseconds each) before `import
    app`, because on an on-demand cold start app starts the model's load while it imports
    (config.loads_model_at_import). Those steps run in the store's thread, alongside the imports
    or inside the first request: they are reported apart as `load.*` (LOAD), not in the serial
    phases, which add up to the cold start."""
    if not imported:
        sys.path.insert(0, config["function_dirs"][variant])
    start = time.monotonic_ns()
    import model_store

    model_store.create_s3_client = load_timed("s3_client", model_store.create_s3_client)
    store_class = model_store.ModelStore
    store_class._read_bytes = load_timed("registry_read", store_class._read_bytes)
    store_class._download = load_timed("model_fetch_and_hash", store_class._download)
    original_init = store_class.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._build_predictor = load_timed("interpreter_build", self._build_predictor)

    store_class.__init__ = init
    import app

    mark("imports", start)

    def after_first_request():
        model = app.get_store().current
        if model is not None:
            LOAD["verify"] = model.timings_ms["verify"]
            LOAD["warmup_invoke"] = model.timings_ms["build"] - LOAD.get("interpreter_build", 0)
        for name, at in LOAD_SPAN.items():  # when the load's steps began and ended
            LOAD[name] = (at - start) / 1e6

    return app.lambda_handler, after_first_request


def ours_otel(config: dict, variant: str):
    """TracingMode otel as AWS's layer runs it (bench/otel.py): opentelemetry-instrument's start
    (`initialize()`: AWS's distro and configurator, the tracer provider, the instrumentations),
    then the layer's otel_wrapper (the Lambda instrumentation wraps ORIG_HANDLER, importing it)."""
    start = time.monotonic_ns()
    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize()
    start = mark("otel_setup", start)
    sys.path.insert(0, config["function_dirs"][variant])
    from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor

    AwsLambdaInstrumentor().instrument()  # imports app and wraps app.lambda_handler
    mark("imports", start)
    return ours(config, variant, imported=True)


def baseline(config: dict, variant: str):
    """The floors or the seed's path (bench/floor.py, lean_floor.py, seed.py), each step timed."""
    sys.path.insert(0, config["root"])
    name = "seed" if variant.startswith("seed") else variant
    start = time.monotonic_ns()
    module = __import__(f"bench.{name}", fromlist=["load"])  # numpy; LiteRT or TensorFlow
    start = mark("imports", start)
    s3 = module.s3_client()
    start = mark("s3_client", start)
    key = config["seed_key" if name == "seed" else "floor_key"]
    model = module.fetch(s3, config["bucket"], key, config["cache_dir"])
    start = mark("model_fetch", start)
    handler = module.load(model, variant)
    mark(module.LOAD_PHASE, start)
    return handler, None  # the seed's first request traces its tf.function


def runtime_bootstrap() -> None:
    """What Lambda's Python runtime imports before the handler, on every function's cold start:
    `python -m awslambdaric` imports its __main__, which imports its config, its runtime API
    client (logging, simplejson, decimal, the C extension runtime_client) and its bootstrap
    (json, traceback, importlib). A function pays it whatever it imports, and does not pay
    again for what it shares (logging, traceback, json, re...). Only imported: nothing runs."""
    start = time.monotonic_ns()
    import awslambdaric.__main__  # noqa: F401

    mark("runtime_bootstrap", start)


LOADERS = {"ours": ours, "ours_xray_sdk": ours, "ours_off": ours, "ours_nopyc": ours}
LOADERS |= {"before": ours, "ours_capture": ours, "ours_signed": ours, "ours_otel": ours_otel}
LOADERS |= {"floor": baseline, "lean_floor": baseline, "seed": baseline, "seed_predict": baseline}


def send_first(fd: int, message: dict) -> None:
    """local.bootstrap.send_message's framing (4-byte big-endian length, then UTF-8 JSON) on
    the raw descriptor, with what every variant has imported already."""
    import os

    data = json.dumps(message).encode()
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def peak_rss_kib() -> int:
    """This process's peak resident memory (VmHWM: since its exec, unlike ru_maxrss, which
    also counts the bench parent's memory the forked child held before it)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


class FirstContext:
    """The first request's context: local.bootstrap.LambdaContext's fields, without importing
    it (and its uuid, logging, resource...) before the first answer. Later requests get the
    real one."""

    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    memory_limit_in_mb = 1024
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    client_context = identity = tenant_id = None

    def __init__(self):
        self._deadline_ms = time.time_ns() // 1_000_000 + 15_000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - time.time_ns() // 1_000_000)


def labels(response: dict) -> dict:
    body = json.loads(response["body"])
    predictions = body.get("predictions", [])
    return {
        "status": response["statusCode"],
        "labels": [p.get("label") for p in predictions],
        "body_bytes": len(response["body"].encode()),
    }


def main() -> None:
    variant, fd, config_path, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(config_path) as f:
        config = json.load(f)
    with open(config["event_path"]) as f:  # batch 1 only: the others are read after
        event = json.load(f)
    PHASES["bench_setup"] = (time.monotonic_ns() - T0) / 1e6
    if variant in config["runtime_bootstrap"]:
        runtime_bootstrap()
    handler, after_first_request = LOADERS[variant](config, variant)

    before, context = sum(PHASES.values()), FirstContext()
    start = time.monotonic_ns()
    response = handler(event, context)
    handler_ms = (time.monotonic_ns() - start) / 1e6
    answered = time.monotonic_ns()
    if after_first_request:
        after_first_request()
    PHASES["first_request"] = handler_ms - (sum(PHASES.values()) - before)
    reply = {"t0": T0, "answered": answered, **labels(response)}
    phases = PHASES | {f"load.{k}": v for k, v in LOAD.items()}
    send_first(fd, reply | {"phases_ms": {k: round(v, 3) for k, v in phases.items()}})
    if mode == "cold":  # its peak memory, once the parent's clock has stopped
        send_first(fd, {"peak_rss_kib": peak_rss_kib()})
        return
    if mode == "largest-batch":  # one request of the most instances allowed, then exit
        with open(config["largest_event_path"]) as f:
            response = handler(json.load(f), FirstContext())
        send_first(fd, labels(response) | {"peak_rss_kib": peak_rss_kib()})
        return

    sys.path.append(config["root"])  # the bench's own tools, now that nothing is timed
    import socket

    from local.bootstrap import LambdaContext, recv_message, send_message

    channel = socket.socket(fileno=fd)
    with open(config["events_path"]) as f:
        events = json.load(f)
    for event in events.values():  # each batch shape once (the interpreter resizes)
        handler(dict(event), LambdaContext())
    perf = time.perf_counter_ns
    while (command := recv_message(channel)) is not None:
        event = events[command["batch"]]
        if command["op"] == "run":
            durations = []
            for _ in range(command["n"]):
                request, context = dict(event), LambdaContext()
                started = perf()
                response = handler(request, context)
                durations.append(perf() - started)
                if response["statusCode"] != 200:
                    raise SystemExit(f"{variant} answered {response}")
            send_message(channel, {"ns": durations})
        elif command["op"] == "answer":
            send_message(channel, labels(handler(dict(event), LambdaContext())))
        elif command["op"] == "profile":
            import site

            site.main()  # pyinstrument: in the interpreter's venv, not on the Lambda-like path
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            with profiler:
                for _ in range(command["n"]):
                    handler(dict(event), LambdaContext())
            with open(command["out"], "w") as f:
                f.write(profiler.output_text(unicode=False, color=False))
            send_message(channel, {"done": True})


if __name__ == "__main__":
    main()
