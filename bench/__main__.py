"""`python -m bench [--quick] [--out FILE]`: every comparison side by side, in one invocation.

Writes results.json (every figure, and a top-level `ratios` object of plain numbers) and prints
markdown tables. Starts its own moto_server on a free loopback port and stops every process it
starts. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import cold, localapi, package, quant, report, scale, warm
from bench import lambda_path as lambda_path_module
from bench.common import (
    BUCKET,
    FIXTURE_DIR,
    FUNCTION_DIR,
    FUNCTION_ENV,
    PREFIX,
    PYTHON,
    ROOT,
    base_event,
    lambda_environment,
    predict_event,
    ratio,
)
from bench.s3local import apply_environment, moto_server, s3_environment

SECTIONS = ("cold", "warm", "quant", "scale", "package", "api")

FULL = {
    "epochs": 5,
    "limit": None,
    "synthetic_mb": "1,10,100",
    "cold_runs": 30,
    "cold_seed_runs": 10,
    "warm": {
        "1": {"rounds": 100, "per_round": 10, "per_round_by_variant": {"seed_predict": 2}},
        "32": {"rounds": 50, "per_round": 5, "per_round_by_variant": {"seed_predict": 2}},
        "256": {"rounds": 30, "per_round": 3, "per_round_by_variant": {"seed_predict": 1}},
    },
    "quant_rounds": 30,
    "quant_per_round": 20,
    "scale_rounds": {"1": 15, "10": 9, "100": 7},
    "api_seconds": 5.0,
}
QUICK = {
    "epochs": 1,
    "limit": 1000,
    "synthetic_mb": "1,100",
    "cold_runs": 2,
    "cold_seed_runs": 1,
    "warm": {
        "1": {"rounds": 10, "per_round": 5, "per_round_by_variant": {"seed_predict": 1}},
        "32": {"rounds": 4, "per_round": 2, "per_round_by_variant": {"seed_predict": 1}},
        "256": {"rounds": 2, "per_round": 1, "per_round_by_variant": {"seed_predict": 1}},
    },
    "quant_rounds": 3,
    "quant_per_round": 5,
    "scale_rounds": {"1": 2, "100": 2},
    "api_seconds": 1.0,
}
COLD_LABELS = {
    "ours": "ours (app.lambda_handler)",
    "ours_untraced": "ours, POWERTOOLS_TRACE_DISABLED=true",
    "before": "ours before this issue's changes",
    "ours_nopyc": "ours, without bytecode (a layer built with pip --no-compile only)",
    "whatif_no_boto3": "what-if, not shipped: ours with a stdlib SigV4 S3 client (no boto3) "
    "and no X-Ray library patching",
    "floor": "floor (numpy + LiteRT + boto3 only)",
    "seed": "seed's path (TensorFlow + model.keras, @tf.function)",
}
WARM_LABELS = {
    "ours": "ours (app.lambda_handler)",
    "ours_untraced": "ours, POWERTOOLS_TRACE_DISABLED=true",
    "before": "ours before this issue's changes",
    "floor": "floor",
    "seed": "seed's path, @tf.function",
    "seed_predict": "seed's path, model.predict",
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1_048_576
    except (OSError, ValueError, IndexError):
        memory = float("nan")
    from importlib.metadata import version

    versions = {}
    for name in (
        "ai-edge-litert",
        "numpy",
        "tensorflow-cpu",
        "aws-lambda-powertools",
        "boto3",
        "moto",
    ):
        try:
            versions[name] = version(name)
        except Exception:
            versions[name] = None
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "versions": versions,
        "load_before": round(os.getloadavg()[0], 2),
    }


def prepare(work: Path, settings: dict) -> dict:
    out = work / "prepare"
    command = [
        PYTHON,
        "-m",
        "bench.prepare",
        "--out",
        str(out),
        "--epochs",
        str(settings["epochs"]),
        "--synthetic-mb",
        settings["synthetic_mb"],
    ]
    if settings["limit"]:
        command += ["--limit", str(settings["limit"])]
    with open(work / "prepare.log", "wb") as log_file:
        completed = subprocess.run(command, cwd=str(ROOT), stdout=log_file, stderr=log_file)
    if completed.returncode != 0:
        raise SystemExit(f"bench: preparing the models failed; see {work / 'prepare.log'}")
    prepared = json.loads((out / "prepare.json").read_text())
    prepared["dir"] = str(out)
    return prepared


def publish_all(prepared: dict) -> dict:
    import boto3

    from training.publish import publish

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    artifact = Path(prepared["artifact_dir"])
    publish(artifact, BUCKET, PREFIX, s3=s3)
    version = prepared["version"]
    keys = {
        "model_key": f"{PREFIX}/mnist/{version}/model.tflite",
        "keras_key": f"seed/mnist/{version}/model.keras",
    }
    s3.upload_file(str(artifact / "model.keras"), BUCKET, keys["keras_key"])
    synthetic = {}
    for size, info in prepared["synthetic"].items():
        publish(Path(info["dir"]), BUCKET, PREFIX, s3=s3)
        synthetic[size] = {**info, "version": version}
    return {**keys, "synthetic": synthetic}


def write_events(work: Path) -> tuple[Path, Path, str]:
    import numpy as np

    with np.load(FIXTURE_DIR / "digits.npz") as digits:
        x = digits["x"]
    base, source = base_event()
    events = {str(n): predict_event(x[:n].astype(int).tolist(), base) for n in (1, 32, 256)}
    events_path, event_path = work / "events.json", work / "event-1.json"
    events_path.write_text(json.dumps(events))
    event_path.write_text(json.dumps(events["1"]))
    return events_path, event_path, source


def child_environment(endpoint: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "POWERTOOLS_", "MODEL_")) and k not in ("PYTHONPATH",)
    }
    env.update(s3_environment(endpoint))
    env.update(FUNCTION_ENV)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def compute_ratios(results: dict) -> dict:
    cold_v = results.get("cold_start", {}).get("variants", {})
    warm_1 = results.get("warm", {}).get("batches", {}).get("1", {})
    modes = results.get("quantization", {}).get("modes", {})
    scale_100 = results.get("model_scale", {}).get("100", {})
    package_mib = results.get("package", {}).get("unzipped_mib", float("nan"))

    def p50(section: dict, name: str) -> float:
        return section.get(name, {}).get("p50_ms", float("nan"))

    prepared = results.get("prepared", {})
    keras_accuracy = prepared.get("keras_float_accuracy", float("nan"))
    int8_accuracy = prepared.get("modes", {}).get("int8", {}).get("accuracy", float("nan"))
    return {
        "cold_start_vs_seed": ratio(p50(cold_v, "seed"), p50(cold_v, "ours")),
        "cold_start_vs_floor": ratio(p50(cold_v, "ours"), p50(cold_v, "floor")),
        "warm_p50_vs_seed": ratio(p50(warm_1, "seed"), p50(warm_1, "ours")),
        "warm_p50_vs_floor": ratio(p50(warm_1, "ours"), p50(warm_1, "floor")),
        "int8_bytes_vs_float32": ratio(
            modes.get("int8", {}).get("bytes", float("nan")),
            modes.get("none", {}).get("bytes", float("nan")),
            4,
        ),
        "int8_accuracy_drop_points": round((keras_accuracy - int8_accuracy) * 100, 3),
        "package_unzipped_mb": round(float(package_mib), 2),
        "large_model_load_vs_download": scale_100.get("ours_vs_plain_download", float("nan")),
    }


def context_ratios(results: dict) -> dict:
    """Figures that say which goals the floor itself allows, and what packaging costs."""
    cold_v = results.get("cold_start", {}).get("variants", {})
    warm_b = results.get("warm", {}).get("batches", {})

    def p50(section: dict, name: str) -> float:
        return section.get(name, {}).get("p50_ms", float("nan"))

    out = {
        "cold_start_seed_vs_floor": ratio(p50(cold_v, "seed"), p50(cold_v, "floor")),
        "cold_start_layer_without_bytecode_vs_ours": ratio(
            p50(cold_v, "ours_nopyc"), p50(cold_v, "ours")
        ),
        "whatif_no_boto3_cold_start_vs_seed": ratio(
            p50(cold_v, "seed"), p50(cold_v, "whatif_no_boto3")
        ),
        "whatif_no_boto3_cold_start_vs_ours": ratio(
            p50(cold_v, "whatif_no_boto3"), p50(cold_v, "ours")
        ),
        "cold_start_tracing_disabled_vs_ours": ratio(
            p50(cold_v, "ours_untraced"), p50(cold_v, "ours")
        ),
    }
    for batch, rows in warm_b.items():
        out[f"warm_p50_seed_vs_floor_batch{batch}"] = ratio(p50(rows, "seed"), p50(rows, "floor"))
        out[f"warm_p50_vs_floor_batch{batch}"] = ratio(p50(rows, "ours"), p50(rows, "floor"))
        out[f"warm_p50_seed_predict_vs_ours_batch{batch}"] = ratio(
            p50(rows, "seed_predict"), p50(rows, "ours")
        )
        if "before" in rows:
            out[f"warm_p50_before_vs_ours_batch{batch}"] = ratio(
                p50(rows, "before"), p50(rows, "ours")
            )
    if "before" in cold_v:
        out["cold_start_before_vs_ours"] = ratio(p50(cold_v, "before"), p50(cold_v, "ours"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few runs of everything (CI smoke test); figures are not meaningful",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="also write the tables to this file"
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--profile-dir",
        type=Path,
        default=None,
        help="also write pyinstrument profiles of the warm path there",
    )
    parser.add_argument(
        "--baseline-function",
        type=Path,
        default=None,
        help="a copy of functions/inference from before a change: adds 'before' "
        "rows (cold and warm), interleaved with ours",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, models)")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; allowed: {', '.join(SECTIONS)}")
    settings = QUICK if args.quick else FULL
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    results: dict = {
        "mode": "quick" if args.quick else "full",
        "machine": machine_info(),
        "settings": settings,
    }
    try:
        log(f"bench: work folder {work}")
        log("bench: training the model and converting it 4 ways (training library, TensorFlow) ...")
        prepared = prepare(work, settings)
        results["prepared"] = {
            k: v for k, v in prepared.items() if k not in ("dir", "artifact_dir")
        }
        results["prepared"]["synthetic"] = {  # without this run's temporary paths
            size: {k: v for k, v in info.items() if k != "dir"}
            for size, info in prepared["synthetic"].items()
        }
        with moto_server() as endpoint:
            apply_environment(endpoint)
            keys = publish_all(prepared)
            events_path, event_path, event_source = write_events(work)
            env = child_environment(endpoint)
            daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            daemon.bind(("127.0.0.1", 0))
            env.update(lambda_environment(daemon.getsockname()[1]))
            extra = ("before",) if args.baseline_function else ()
            config = {
                "function_dir": str(FUNCTION_DIR),
                "root": str(ROOT),
                "bucket": BUCKET,
                "baseline_function_dir": str(args.baseline_function.resolve())
                if args.baseline_function
                else None,
                "events_path": str(events_path),
                "event_path": str(event_path),
                **keys,
            }
            lambda_path, path_note = lambda_path_module.build(work / "lambda-path", log)
            results["function_import_path"] = path_note
            # Lambda's /var/task and /opt are read-only: bytecode is used only if shipped. Every
            # process gets the same prepared bytecode (PYTHONPYCACHEPREFIX, filled by one priming
            # run; the seed's .venv has its own), except "ours_nopyc": a copy of the layer without
            # its bytecode, as pip --no-compile alone builds it.
            pycache = work / "pycache"
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            function_variants = (
                "ours",
                "ours_untraced",
                "ours_nopyc",
                "whatif_no_boto3",
                "before",
                "floor",
            )
            variant_env: dict[str, dict[str, str]] = {
                v: {"PYTHONPYCACHEPREFIX": str(pycache)} for v in function_variants
            }
            variant_env["ours_untraced"]["POWERTOOLS_TRACE_DISABLED"] = "true"
            # no prefix: the standard library and boto3 keep their own bytecode, as on Lambda
            variant_env["ours_nopyc"] = {}
            python_for: dict[str, list[str]] = {}
            if lambda_path:
                for variant in function_variants:
                    variant_env[variant]["PYTHONPATH"] = lambda_path
                    python_for[variant] = [PYTHON, "-S"]
                variant_env["ours_nopyc"]["PYTHONPATH"] = lambda_path_module.without_bytecode(
                    lambda_path, work
                )
            priming_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
            (work / "cold").mkdir(parents=True, exist_ok=True)
            for variant in ("ours", *extra, "whatif_no_boto3", "floor"):
                cold.one(
                    variant,
                    config,
                    {**priming_env, **variant_env[variant]},
                    work / "cold",
                    python_for.get(variant),
                )
            results["event"] = {
                "source": event_source,
                "route": "POST /predict",
                "body": '{"instances": [N x 28x28 integer grey levels]}',
            }
            if "cold" in sections:
                log("bench: cold starts ...")
                variants = cold.run(
                    config,
                    env,
                    work / "cold",
                    settings["cold_runs"],
                    settings["cold_seed_runs"],
                    log,
                    variant_env,
                    (
                        "ours",
                        *extra,
                        "ours_untraced",
                        "ours_nopyc",
                        "whatif_no_boto3",
                        "floor",
                        "seed",
                    ),
                    python_for,
                )
                results["cold_start"] = {"labels": COLD_LABELS, "variants": variants}
            if "warm" in sections:
                log("bench: warm latency ...")
                config_path = work / "warm-config.json"
                cache = work / "warm-cache"
                cache.mkdir()
                config_path.write_text(json.dumps({**config, "cache_dir": str(cache)}))
                workers = warm.start_workers(
                    ("ours", *extra, "ours_untraced", "floor", "seed", "seed_predict"),
                    config_path,
                    {**env, "MODEL_CACHE_DIR": str(cache / "models")},
                    work,
                    variant_env,
                    python_for,
                )
                try:
                    batches = warm.run(workers, settings["warm"], log)
                    agreement = warm.agreement(workers, settings["warm"])
                    if args.profile_dir:
                        args.profile_dir.mkdir(parents=True, exist_ok=True)
                        for batch, n in (("1", 2000), ("256", 60)):
                            warm.profile(
                                workers["ours"],
                                batch,
                                n,
                                args.profile_dir.resolve() / f"warm-ours-batch{batch}.txt",
                            )
                finally:
                    warm.stop(workers)
                results["warm"] = {
                    "labels": WARM_LABELS,
                    "batches": batches,
                    "label_agreement_with_ours": agreement,
                }
            if "quant" in sections:
                log("bench: quantization modes ...")
                import numpy as np

                with np.load(Path(prepared["dir"]) / "test_split.npz") as split:
                    x_test = split["x"]
                results["quantization"] = quant.run(
                    Path(prepared["dir"]) / "modes",
                    prepared,
                    x_test,
                    settings["quant_rounds"],
                    settings["quant_per_round"],
                )
            if "scale" in sections:
                log("bench: model scale ...")
                (work / "scale").mkdir()
                results["model_scale"] = scale.run(
                    keys["synthetic"], work / "scale", settings["scale_rounds"], log
                )
            if "api" in sections:
                log("bench: local API ...")
                body = json.dumps(
                    {
                        "instances": json.loads(_event_body(json.loads(event_path.read_text())))[
                            "instances"
                        ]
                    }
                ).encode()
                (work / "api").mkdir()
                results["local_api"] = localapi.run(
                    body, env, work / "api", [1, 20], settings["api_seconds"], log
                )
            daemon.close()
        if "package" in sections:
            log("bench: deployment size ...")
            results["package"] = package.run(work / "package", allow_build=True, log=log)
    finally:
        if args.keep:
            log(f"bench: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["ratios"] = compute_ratios(results)
    results["context"] = context_ratios(results)
    results["goals"] = {
        k: {"op": op, "goal": goal, "met": report.meets(k, results["ratios"][k])}
        for k, (op, goal) in report.GOALS.items()
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_finite(results), indent=2) + "\n")
    table = report.markdown(results)
    if args.markdown:
        args.markdown.write_text(table)
    print(table)
    log(f"bench: wrote {args.out} in {results['wall_seconds']:.0f} s")
    return 0


def _event_body(event: dict) -> str:
    import base64

    body = event["body"]
    return base64.b64decode(body).decode() if event.get("isBase64Encoded") else body


def _finite(value):
    """NaN is not JSON: unmeasured figures become null (ratios stay numbers where measured)."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
