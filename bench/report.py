"""results.json -> the markdown tables `make bench` prints (and bench/README.md shows)."""

from __future__ import annotations

import math

GOALS = {
    "cold_start_vs_seed": (">=", 10),
    "cold_start_vs_floor": ("<=", 1.5),
    "warm_p50_vs_seed": (">=", 5),
    "warm_p50_vs_floor": ("<=", 2),
    "int8_bytes_vs_float32": ("<=", 0.30),
    "int8_accuracy_drop_points": ("<=", 0.5),
    "package_unzipped_mb": ("<=", 100),
    "large_model_load_vs_download": ("<=", 1.3),
}
MEANING = {
    "cold_start_vs_seed": "seed's cold start / ours",
    "cold_start_vs_floor": "our cold start / the floor's",
    "warm_p50_vs_seed": "seed's warm p50 / ours (batch 1)",
    "warm_p50_vs_floor": "our warm p50 / the floor's (batch 1)",
    "int8_bytes_vs_float32": "int8 model bytes / float32 TFLite bytes",
    "int8_accuracy_drop_points": "float accuracy - int8 accuracy (points)",
    "package_unzipped_mb": "function + layers, unzipped (MiB)",
    "large_model_load_vs_download": "our fetch-verify-load / plain boto3 download (~100 MB)",
}


def meets(key: str, value: float) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    op, goal = GOALS[key]
    return value >= goal if op == ">=" else value <= goal


def _f(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown(results: dict) -> str:
    out: list[str] = []
    machine = results.get("machine", {})
    out.append(
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cpus', '?')} CPUs, "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('os', '?')}, Python "
        f"{machine.get('python', '?')}; load average {machine.get('load_before', '?')} before, "
        f"{machine.get('load_after', '?')} after. Mode: {results.get('mode')}, "
        f"{results.get('wall_seconds', 0):.0f} s."
    )
    out.append("")
    out.append("| ratio | value | goal | met |")
    out.append("| --- | ---: | ---: | :---: |")
    for key, value in results["ratios"].items():
        op, goal = GOALS[key]
        met = meets(key, value)
        out.append(
            f"| `{key}` ({MEANING[key]}) | {_f(value)} | {op} {goal} | "
            f"{'yes' if met else 'no' if met is not None else 'n/a'} |"
        )

    context = results.get("context") or {}
    if context:
        out += [
            "",
            "Context (what the floor itself allows; what packaging and tracing cost):",
            "",
            "| figure | value |",
            "| --- | ---: |",
        ]
        out += [f"| `{key}` | {_f(value)} |" for key, value in context.items()]

    cold = results.get("cold_start")
    if cold:
        out += [
            "",
            "Cold start (fresh process -> first answered request, model on S3 on loopback), ms:",
            "",
            "| variant | p50 | p90 | min | runs | breakdown (p50 of each phase) |",
            "| --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for variant, row in cold["variants"].items():
            phases = ", ".join(f"{k} {_f(v, 1)}" for k, v in row["phases_p50_ms"].items())
            out.append(
                f"| {cold['labels'][variant]} | {_f(row['p50_ms'], 0)} | {_f(row['p90_ms'], 0)} | "
                f"{_f(row['min_ms'], 0)} | {row['n']} | {phases} |"
            )

    warm = results.get("warm")
    if warm:
        out += [
            "",
            "Warm latency through the handler (API Gateway event in, response out), ms:",
            "",
            "| instances | variant | p50 | p99 | per instance p50 (µs) | p50 vs ours |",
            "| ---: | --- | ---: | ---: | ---: | ---: |",
        ]
        for batch, rows in warm["batches"].items():
            ours = rows["ours"]["p50_ms"]
            for variant, row in rows.items():
                out.append(
                    f"| {batch} | {warm['labels'][variant]} | {_f(row['p50_ms'], 3)} | "
                    f"{_f(row['p99_ms'], 3)} | {_f(row['per_instance_p50_us'], 1)} | "
                    f"{_f(row['p50_ms'] / ours if ours else float('nan'))}x |"
                )

    quant = results.get("quantization")
    if quant:
        out += [
            "",
            f"Quantization modes (same Keras model, same {quant['test_size']}-digit test split; "
            f"Keras float accuracy {quant['keras_float_accuracy']:.2%}), invoke time ms:",
            "",
            "| mode | bytes | vs float32 | accuracy | drop (points) "
            "| invoke p50, 1 | invoke p50, 256 |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in quant["modes"].values():
            out.append(
                f"| {row['label']} | {row['bytes']:,} | {_f(row['bytes_vs_float32'])} | "
                f"{row['accuracy']:.2%} | {_f(row['accuracy_drop_points_vs_keras_float'], 1)} | "
                f"{_f(row['invoke_batch1']['p50_ms'], 4)} | "
                f"{_f(row['invoke_batch256']['p50_ms'], 3)} |"
            )

    package = results.get("package")
    if package:
        out += [
            "",
            f"Deployment size ({package['source']}), MiB:",
            "",
            "| package | zipped | unzipped | Lambda limit (unzipped) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, part in package.get("parts", {}).items():
            out.append(
                f"| {name} ({part['kind']}) | {_f(part['zipped_bytes'] / 1_048_576)} | "
                f"{_f(part['unzipped_bytes'] / 1_048_576)} | |"
            )
        out.append(
            f"| **function + layers** | {_f(package.get('zipped_mib'))} | "
            f"{_f(package.get('unzipped_mib'))} | {package['lambda_unzipped_limit_mib']} |"
        )
        tf = package["tensorflow"]
        out.append(
            f"| tensorflow-cpu + its dependencies ({tf['distributions']} distributions, .venv "
            f"x86_64 cp311) | | {_f(tf['unzipped_mib'], 0)} | "
            f"{package['lambda_unzipped_limit_mib']} |"
        )

    scale = results.get("model_scale")
    if scale:
        out += [
            "",
            "Model scale: the function's fetch-verify-load (pointer, manifest, stream + sha256, "
            "interpreter, warm-up) beside a plain boto3 download of the same object (the faster of "
            "download_file and get_object), p50 ms:",
            "",
            "| model | ours | plain download_file | plain get_object | ours / plain | "
            "ours with boto3's default checksum validation | ours MiB/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in scale.values():
            out.append(
                f"| {row['bytes'] / 1_048_576:.1f} MiB | {_f(row['ours']['p50_ms'], 1)} | "
                f"{_f(row['plain_download_file']['p50_ms'], 1)} | "
                f"{_f(row['plain_get_object']['p50_ms'], 1)} | "
                f"{_f(row['ours_vs_plain_download'])} | "
                f"{_f(row['ours_with_default_checksum_client']['p50_ms'], 1)} | "
                f"{_f(row['ours_mb_per_s'], 0)} |"
            )

    api = results.get("local_api")
    if api is not None:
        out += ["", "Local API (informational; production scaling is Lambda's):", ""]
        if api.get("measured"):
            out += ["| clients | requests/s | p50 ms | p99 ms |", "| ---: | ---: | ---: | ---: |"]
            for clients, row in api["clients"].items():
                out.append(
                    f"| {clients} | {_f(row['requests_per_second'], 0)} | "
                    f"{_f(row['latency']['p50_ms'], 1)} | "
                    f"{_f(row['latency']['p99_ms'], 1)} |"
                )
        else:
            out.append(f"not measured: {api.get('reason')}")
    return "\n".join(out) + "\n"
