"""`python -m bench [--quick] [--out FILE]`: every comparison side by side, in one invocation.

Writes results.json (every figure, and a top-level `ratios` object of plain numbers) and prints
markdown tables. Starts its own moto_server on a free loopback port and stops every process it
starts. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import base64
import compileall
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from bench import batch as batch_jobs  # `batch` names a batch size in measure()
from bench import (
    cold,
    cost,
    lambda_path,
    localapi,
    memory,
    otel,
    package,
    quant,
    report,
    scale,
    warm,
)
from bench.common import (
    BUCKET,
    PYTHON,
    ROOT,
    function_environment,
    lambda_environment,
)
from local.events import api_event
from local.s3 import client_environment, moto_server
from mlcore.registry import Registry

SECTIONS = ("cold", "warm", "memory", "quant", "scale", "package", "api", "batch", "cost")
FULL = {
    "epochs": 5,
    "limit": None,
    "synthetic_mb": "1,10,100",
    "cold_runs": 30,
    "cold_seed_runs": 10,
    "memory_runs": 10,
    "warm": {
        "1": {"rounds": 100, "per_round": 10, "per_round_by_variant": {"seed_predict": 2}},
        "32": {"rounds": 50, "per_round": 5, "per_round_by_variant": {"seed_predict": 2}},
        "256": {"rounds": 30, "per_round": 3, "per_round_by_variant": {"seed_predict": 1}},
    },
    "quant_rounds": 30,
    "quant_per_round": 20,
    "scale_rounds": {"1": 15, "10": 9, "100": 7},
    "api_seconds": 5.0,
    "batch_sizes": [10, 100, 200, 1000],  # 200: template.yaml's BatchSize
    "batch_rounds": 5,
}
QUICK = {  # every code path once or twice: checks that the bench runs, not figures
    "epochs": 1,
    "limit": 1000,
    "synthetic_mb": "1,2",
    "cold_runs": 1,
    "cold_seed_runs": 1,
    "memory_runs": 1,
    "warm": {
        b: {"rounds": 2, "per_round": 2, "per_round_by_variant": {}} for b in ("1", "32", "256")
    },
    "quant_rounds": 2,
    "quant_per_round": 4,
    "scale_rounds": {"1": 1, "2": 1},
    "api_seconds": 0.5,
    "batch_sizes": [10, 200],
    "batch_rounds": 1,
}
COLD_LABELS = {
    "ours": "ours (app.lambda_handler, the template's defaults: TracingMode lambda)",
    "before": "ours before this issue's changes",
    "ours_xray_sdk": "ours, TracingMode xray-sdk (Powertools' Tracer, subsegments)",
    "ours_otel": "ours, TracingMode otel (AWS's OpenTelemetry layer: wrapper, spans over UDP)",
    "ours_off": "ours, TracingMode off",
    "ours_signed": "ours, signed versions (MANIFEST_PUBLIC_KEY: one more GET, one P-256 check)",
    "ours_nopyc": "ours, without bytecode (function and layer built with pip --no-compile only)",
    "lean_floor": "lean floor (numpy + LiteRT + obstore only)",
    "floor": "floor (numpy + LiteRT + boto3 only)",
    "seed": "seed's path (TensorFlow + model.keras, @tf.function)",
}
WARM_LABELS = {
    **{k: COLD_LABELS[k] for k in ("ours", "before", "ours_xray_sdk", "ours_otel", "ours_off")},
    "ours_capture": "ours, capture on (CaptureSampleRate > 0), the request not sampled",
    "lean_floor": "lean floor",
    "floor": "floor",
    "seed": "seed's path, @tf.function",
    "seed_predict": "seed's path, model.predict",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in cpuinfo if x.startswith("model name")), "?")
    packages = ("ai-edge-litert", "numpy", "tensorflow-cpu", "aws-lambda-powertools", "boto3")
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),  # the bench's own, the seed's and training's
        "versions": {name: metadata.version(name) for name in (*packages, "moto")},
        "load_before": round(os.getloadavg()[0], 2),
    }


def start_prepare(work: Path, settings: dict) -> subprocess.Popen:
    """The models, in their own process (TensorFlow), while the parent builds the packages."""
    command = [PYTHON, "-m", "bench.prepare", "--out", str(work / "prepare")]
    command += ["--epochs", str(settings["epochs"]), "--synthetic-mb", settings["synthetic_mb"]]
    command += ["--limit", str(settings["limit"])] if settings["limit"] else []
    with open(work / "prepare.log", "wb") as output:
        return subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=output)


def publish_all(prepared: dict, function_env: dict) -> dict:
    """The served model, its Keras original (the seed's) and the synthetic models, on S3."""
    import boto3

    from training.publish import publish

    s3, prefix = boto3.client("s3"), function_env["MODEL_PREFIX"]
    s3.create_bucket(Bucket=BUCKET)
    artifact, version = Path(prepared["artifact_dir"]), prepared["version"]
    # Signed with (moto's) KMS as an OpenSSF Model Signing bundle: the variants without
    # MANIFEST_PUBLIC_KEY never read it, ours_signed verifies it (issues 15, 28).
    kms = boto3.client("kms")
    signing_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
        "Arn"
    ]
    publish(artifact, BUCKET, prefix, s3=s3, signing_key=signing_key, kms=kms)
    keys = {
        "floor_key": Registry(prefix, function_env["MODEL_NAME"]).model_key(version),
        "seed_key": f"seed/mnist/{version}/model.keras",
        "public_key": base64.b64encode(kms.get_public_key(KeyId=signing_key)["PublicKey"]).decode(),
    }
    s3.upload_file(str(artifact / "model.keras"), BUCKET, keys["seed_key"])
    for info in prepared["synthetic"].values():  # untrained sizes: their gate failed (prepare)
        publish(Path(info["dir"]), BUCKET, prefix, s3=s3, force=True)
        info["version"] = version
    return keys


def write_events(work: Path, largest: int) -> dict[str, Path]:
    """POST /predict with 1, 32 and 256 digits of the run's test split, as the API sends it,
    and with `largest` (the template's MaxInstances), for the memory section."""
    import numpy as np

    with np.load(work / "prepare" / "test_split.npz") as split:
        x = split["x"].astype(int)
    if x.shape[-1] == 1:  # grey images as H x W arrays, as MNIST clients send them (accepted)
        x = x[..., 0]
    paths = {"event_path": work / "event-1.json", "events_path": work / "events.json"}
    paths["largest_event_path"] = work / "event-largest.json"

    def event(n: int) -> dict:
        digits = np.resize(x, (n, *x.shape[1:]))  # the split again where it has fewer
        body = json.dumps({"instances": digits.tolist()}, separators=(",", ":"))
        return api_event("POST", "/predict", body, headers={"Content-Type": "application/json"})

    events = {str(n): event(n) for n in (1, 32, 256)}
    paths["event_path"].write_text(json.dumps(events["1"]))
    paths["events_path"].write_text(json.dumps(events))
    paths["largest_event_path"].write_text(json.dumps(event(largest)))  # MaxInstances
    return paths


def measure(args, settings: dict, work: Path, built: lambda_path.LambdaPath, results: dict):
    sections, prepared = args.sections, results["prepared"]
    with moto_server() as endpoint:
        shell = client_environment(int(endpoint.rsplit(":", 1)[1]))
        os.environ.update(shell)
        for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(key, None)
        function_env = function_environment(shell)
        config = {"root": str(ROOT), "bucket": BUCKET, **publish_all(prepared, function_env)}
        largest = int(function_env["MAX_INSTANCES"])
        config |= {k: str(v) for k, v in write_events(work, largest).items()}
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "POWERTOOLS_", "MODEL_")) and k != "PYTHONPATH"
        }
        base |= {**shell, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env = {**base, **function_env}
        # Lambda's /var/task and /opt are read-only: Python uses only the bytecode that the
        # packages ship (their Makefiles compile it); the bench's own modules get theirs here.
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for folder in ("bench", "local", "mlcore"):
            compileall.compile_dir(ROOT / folder, quiet=1)
        daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        daemon.bind(("127.0.0.1", 0))
        env |= lambda_environment(built.function, daemon.getsockname()[1])

        lambda_like = {"PYTHONPATH": built.pythonpath()}
        # TracingMode otel: the template's environment for it, what /opt/otel-instrument adds,
        # and AWS's OpenTelemetry layer over ours in /opt/python (the later layer wins)
        otel_layer = "arn:aws:lambda:us-east-1:615299751070:layer:AWSOpenTelemetryDistroPython:1"
        otel_env = function_environment(shell, TracingMode="otel", OtelLayerArn=otel_layer)
        otel_like = otel.wrapper_environment(otel_env, "app.lambda_handler") | {
            "TRACING_MODE": "otel",
            "PYTHONPATH": os.pathsep.join((str(otel.packages()), built.pythonpath())),
        }
        nopyc = work / "without-bytecode"
        nopyc_function = lambda_path.without_bytecode(built.function, nopyc / "function")
        nopyc_layer = lambda_path.without_bytecode(built.layer, nopyc / "python")
        variants = {  # variant -> (function package, extra environment)
            "ours": (built.function, lambda_like),
            "ours_xray_sdk": (built.function, {**lambda_like, "TRACING_MODE": "xray-sdk"}),
            "ours_otel": (built.function, otel_like),
            "ours_off": (built.function, {**lambda_like, "TRACING_MODE": "off"}),
            "ours_signed": (
                built.function,
                {**lambda_like, "MANIFEST_PUBLIC_KEY": config["public_key"]},
            ),
            # capture on at a rate no request of the bench ever draws (2^-53 per request is
            # the least random() gives): what an unsampled request pays for capture being on
            "ours_capture": (
                built.function,
                {**lambda_like, "CAPTURE_SAMPLE_RATE": "1e-12", "CAPTURE_BUCKET": BUCKET},
            ),
            "ours_nopyc": (nopyc_function, {"PYTHONPATH": built.pythonpath(nopyc_layer)}),
            "lean_floor": (None, lambda_like),
            "floor": (None, lambda_like),
            "seed": (None, {}),
            "seed_predict": (None, {}),
        }
        if args.baseline_function:
            variants["before"] = (args.baseline_function.resolve(), lambda_like)
        config["function_dirs"] = {v: str(d) for v, (d, _) in variants.items() if d}
        envs = {v: {**env, **extra} for v, (_, extra) in variants.items()}
        # Lambda's Python (.venv-function's 3.13) for everything on the Lambda-like path; the
        # seed's path keeps .venv's (it needs TensorFlow). On the Lambda-like path each child
        # first imports what Lambda's runtime imports before the handler (bench/child.py)
        lambda_like_variants = sorted(v for v, e in envs.items() if "PYTHONPATH" in e)
        config["runtime_bootstrap"] = lambda_like_variants
        pythons = {v: [built.python, "-S"] if v in lambda_like_variants else [PYTHON] for v in envs}
        versions = {PYTHON: platform.python_version(), built.python: built.version}
        results["python"] = {v: versions[command[0]] for v, command in pythons.items()}
        results["function_import_path"] = built.note()
        results["event"] = {
            "source": "local.events.api_event (the proxy event the local API sends)",
            "route": "POST /predict",
            "body": '{"instances": [N x 28x28 integer grey levels]}',
        }

        def only(*names):
            return {v: envs[v] for v in names if v in envs}

        if "cold" in sections:
            log("bench: cold starts ...")
            (work / "cold").mkdir()
            chosen = only(
                "ours",
                "before",
                "ours_xray_sdk",
                "ours_otel",
                "ours_off",
                "ours_signed",
                "ours_nopyc",
                "lean_floor",
                "floor",
                "seed",
            )
            runs, seed_runs = settings["cold_runs"], settings["cold_seed_runs"]
            variants_ = cold.run(config, chosen, pythons, work / "cold", runs, seed_runs, log)
            results["cold_start"] = {"labels": COLD_LABELS, "variants": variants_}
        if "warm" in sections:
            log("bench: warm latency ...")
            config_path = work / "warm-config.json"
            cache = work / "warm-cache"
            cache.mkdir()
            config_path.write_text(json.dumps({**config, "cache_dir": str(cache)}))
            chosen = only(
                "ours",
                "before",
                "ours_xray_sdk",
                "ours_otel",
                "ours_off",
                "ours_capture",
                "lean_floor",
                "floor",
                "seed",
                "seed_predict",
            )
            chosen = {v: {**e, "MODEL_CACHE_DIR": str(cache / "models")} for v, e in chosen.items()}
            workers = warm.start(config_path, chosen, pythons, work)
            try:
                batches = warm.run(workers, settings["warm"], log)
                agreement = warm.agreement(workers, settings["warm"])
                sizes = warm.answer_bytes(workers, settings["warm"])
                if args.profile_dir:
                    args.profile_dir.mkdir(parents=True, exist_ok=True)
                    for batch, n in (("1", 2000), ("256", 60)):
                        out = args.profile_dir.resolve() / f"warm-ours-batch{batch}.txt"
                        command = {"op": "profile", "batch": batch, "n": n, "out": str(out)}
                        workers["ours"].request(command)
            finally:
                warm.stop(workers)
            results["warm"] = {
                "labels": WARM_LABELS,
                "batches": batches,
                "label_agreement_with_ours": agreement,
                "request_bytes": {
                    b: len(e["body"].encode())
                    for b, e in json.loads((work / "events.json").read_text()).items()
                },
                "answer_bytes": sizes,
            }
        if "memory" in sections:
            log("bench: peak memory of the largest batch ...")
            (work / "memory").mkdir()
            chosen = only("ours", "lean_floor")
            runs = settings["memory_runs"]
            results["memory"] = {
                "largest_batch_instances": largest,
                "largest_batch": memory.run(config, chosen, pythons, work / "memory", runs, log),
                "cold": {  # the cold section's processes, each ended after its first answer
                    v: row["peak_rss_mib"]
                    for v, row in results.get("cold_start", {}).get("variants", {}).items()
                },
            }
        if "quant" in sections:
            log("bench: quantization modes ...")
            import numpy as np

            folder = Path(prepared["dir"])
            with np.load(folder / "test_split.npz") as split:
                x_test = split["x"]
            rounds, per_round = settings["quant_rounds"], settings["quant_per_round"]
            results["quantization"] = quant.run(
                folder / "modes", prepared, x_test, rounds, per_round
            )
        if "scale" in sections:
            log("bench: model scale ...")
            (work / "scale").mkdir()
            rounds = settings["scale_rounds"]
            results["model_scale"] = scale.run(
                prepared["synthetic"], function_env, work / "scale", rounds, log
            )
        if "api" in sections:
            log("bench: local API ...")
            body = json.loads(json.loads((work / "event-1.json").read_text())["body"])
            (work / "api").mkdir()
            results["local_api"] = localapi.run(
                json.dumps(body).encode(), base, work / "api", [1, 20], settings["api_seconds"], log
            )
        if "batch" in sections:
            log("bench: batch jobs beside the HTTP API ...")
            import boto3

            from local.transformed import load_template

            folder = work / "batch"
            folder.mkdir()
            buckets = function_environment(shell, **batch_jobs.parameters())
            batch_env = {
                **envs["ours"],
                **{k: v for k, v in buckets.items() if k.startswith("BATCH_")},
                "MODEL_CACHE_DIR": str(folder / "cache"),
            }
            results["batch"] = batch_jobs.run(
                boto3.client("s3"),
                built.function,
                batch_env,
                pythons["ours"],
                folder,
                settings["batch_sizes"],
                settings["batch_rounds"],
                int(load_template()["Parameters"]["MemorySize"]["Default"]),
                log,
            )
        results["xray_segments_received"] = segments(daemon)


def segments(daemon: socket.socket) -> dict[str, int]:
    """How many datagrams reached the loopback X-Ray daemon (what its buffer kept), by kind:
    the X-Ray SDK's segments (JSON) and OpenTelemetry spans (OTLP, base64 after "T1S" or "T1U",
    as AWS's distribution sends them). Traced variants must send some, or they are not running
    as on Lambda."""
    daemon.setblocking(False)
    counts = {"xray_sdk": 0, "otel": 0}
    with daemon:
        while True:
            try:
                datagram = daemon.recv(65536)
            except BlockingIOError:
                return counts
            body = datagram.split(b"\n", 1)[-1]
            counts["otel" if body.startswith((b"T1S", b"T1U")) else "xray_sdk"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few runs of everything (smoke test)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--profile-dir", type=Path, help="pyinstrument profiles of the warm path")
    parser.add_argument(
        "--baseline-function",
        type=Path,
        help="a function package from before a change (its Makefile's output): adds 'before' "
        "rows (cold and warm), interleaved with ours",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, models)")
    args = parser.parse_args(argv)
    args.sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    if unknown := args.sections - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}; allowed: {', '.join(SECTIONS)}")
    settings = QUICK if args.quick else FULL
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    mode = "quick" if args.quick else "full"
    results: dict = {"mode": mode, "machine": machine_info(), "settings": settings}
    try:
        log(f"bench: work folder {work}")
        log("bench: training the model and converting it 4 ways; building the packages ...")
        preparing = start_prepare(work, settings)
        try:
            built = lambda_path.build(work / "lambda-path")
            if "package" in args.sections:  # sizes only: nothing is timed while the models train
                log("bench: deployment size ...")
                host = {"InferenceFunction": ("function", built.function)}
                host["RuntimeLayer"] = ("layer", built.layer.parent)
                results["package"] = package.run(
                    work / "package", log, host if args.quick else None
                )
        except BaseException:
            preparing.kill()
            raise
        finally:
            preparing.wait()
        if preparing.returncode != 0:
            raise SystemExit(f"bench: preparing the models failed; see {work / 'prepare.log'}")
        results["prepared"] = json.loads((work / "prepare" / "prepare.json").read_text())
        results["prepared"]["dir"] = str(work / "prepare")
        measure(args, settings, work, built, results)
        results["prepared"].pop("dir", None)
        for info in results["prepared"]["synthetic"].values():
            info.pop("dir")  # this run's temporary paths
    finally:
        if args.keep:
            log(f"bench: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    if "cost" in args.sections:
        results["cost"] = cost.run(results)
    results["ratios"] = report.ratios(results)
    results["context"] = report.context(results)
    results["goals"] = {
        key: {"op": op, "goal": goal, "met": report.meets(key, results["ratios"][key])}
        for key, (op, goal, _) in report.GOALS.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(finite(results), indent=2) + "\n")
    table = report.markdown(results)
    if args.markdown:
        args.markdown.write_text(table)
    print(table)
    log(f"bench: wrote {args.out} in {results['wall_seconds']:.0f} s")
    return 0


def finite(value):
    """NaN is not JSON: unmeasured figures become null (ratios stay numbers where measured)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
