"""results.json's ratios and goals, and the markdown tables `make bench` prints."""

from __future__ import annotations

import math

from bench.common import ratio

GOALS = {  # key: (op, goal, meaning): issue 29's goals, then the guards every change keeps
    "cold_start_vs_lean_floor": ("<=", 1.2, "our cold start / the lean floor's (obstore)"),
    "warm_p50_vs_floor": ("<=", 1.3, "our warm p50 / the floor's, batch 1 (shipped defaults)"),
    "warm_p50_vs_floor_batch32": ("<=", 1.0, "our warm p50 / the floor's, batch 32"),
    "warm_p50_vs_floor_batch256": ("<=", 1.0, "our warm p50 / the floor's, batch 256"),
    "peak_rss_vs_lean_floor_cold": ("<=", 1.15, "our peak RSS / the lean floor's, cold start"),
    "peak_rss_vs_lean_floor_largest_batch": (
        "<=",
        1.15,
        "our peak RSS / the lean floor's, the largest batch (MaxInstances)",
    ),
    "large_model_load_vs_lean_floor": (
        "<=",
        1.05,
        "our fetch-verify-load / the lean floor's GET and build (largest model)",
    ),
    # guards: issue 12's and issue 15's limits
    "cold_start_vs_seed": (">=", 12, "guard: seed's cold start / ours"),
    "int8_bytes_vs_float32": ("<=", 0.30, "guard: int8 bytes / float32 TFLite bytes (the MLP)"),
    "int8_accuracy_drop_points": ("<=", 0.5, "guard: float - int8 accuracy (points)"),
    "package_unzipped_mb": ("<=", 100, "guard: function + layers, unzipped (MiB)"),
    "cold_start_signed_vs_ours": ("<=", 1.15, "guard: cold start, signed manifests / without"),
}


LABELS_MLP = {"none": "float32", "int8": "int8 (full integer)"}


def p50(rows: dict, name: str) -> float:
    return rows.get(name, {}).get("p50_ms", math.nan)


def p10(rows: dict, name: str) -> float:
    """The 10th percentile of a variant's runs (nearest rank), math.nan without runs."""
    runs = sorted(rows.get(name, {}).get("runs_ms", []))
    return runs[(len(runs) - 1) // 10] if runs else math.nan


def ratios(results: dict) -> dict:
    cold = results.get("cold_start", {}).get("variants", {})
    warm = results.get("warm", {}).get("batches", {}).get("1", {})
    modes = results.get("prepared", {}).get("modes", {})
    scale = results.get("model_scale", {})
    largest = scale[max(scale, key=float)] if scale else {}
    prepared = results.get("prepared", {})
    drop = prepared.get("keras_float_accuracy", math.nan) - modes.get("int8", {}).get(
        "accuracy", math.nan
    )
    mlp = prepared.get("mlp_modes", {})
    batches = results.get("warm", {}).get("batches", {})
    memory = results.get("memory", {})
    peaks = {  # peak resident memory (p50 of fresh processes), ours / the lean floor's
        phase: ratio(
            (memory.get(phase, {}).get("ours") or {}).get("p50") or math.nan,
            (memory.get(phase, {}).get("lean_floor") or {}).get("p50") or math.nan,
        )
        for phase in ("cold", "largest_batch")
    }
    return {
        "cold_start_vs_lean_floor": ratio(p50(cold, "ours"), p50(cold, "lean_floor")),
        "warm_p50_vs_floor": ratio(p50(warm, "ours"), p50(warm, "floor")),
        **{
            f"warm_p50_vs_floor_batch{b}": ratio(
                p50(batches.get(b, {}), "ours"), p50(batches.get(b, {}), "floor")
            )
            for b in ("32", "256")
        },
        "peak_rss_vs_lean_floor_cold": peaks["cold"],
        "peak_rss_vs_lean_floor_largest_batch": peaks["largest_batch"],
        "large_model_load_vs_lean_floor": largest.get("ours_vs_lean_floor", math.nan),
        "cold_start_vs_seed": ratio(p50(cold, "seed"), p50(cold, "ours")),
        "int8_bytes_vs_float32": ratio(
            mlp.get("int8", {}).get("bytes", math.nan),
            mlp.get("none", {}).get("bytes", math.nan),
            4,
        ),
        "int8_accuracy_drop_points": round(drop * 100, 3),
        "package_unzipped_mb": round(results.get("package", {}).get("unzipped_mib", math.nan), 2),
        "cold_start_signed_vs_ours": ratio(p50(cold, "ours_signed"), p50(cold, "ours")),
    }


def context(results: dict) -> dict:
    """Figures that say which goals the floor itself allows, and what packaging costs."""
    cold = results.get("cold_start", {}).get("variants", {})
    modes = results.get("prepared", {}).get("modes", {})
    mlp = results.get("prepared", {}).get("mlp_modes", {})
    scale = results.get("model_scale", {})
    largest = scale[max(scale, key=float)] if scale else {}
    warm = results.get("warm", {}).get("batches", {}).get("1", {})
    out = {
        # issue 12's goals, kept as context: the 100 MB load against a plain boto3 download,
        # and the seed's model.predict against ours
        "large_model_load_vs_download": largest.get("ours_vs_plain_download", math.nan),
        "warm_p50_vs_seed_predict": ratio(p50(warm, "seed_predict"), p50(warm, "ours")),
        "cold_start_vs_floor": ratio(p50(cold, "ours"), p50(cold, "floor")),
        # the fastest tenth of each: what a machine no other job shares gives. Here other jobs
        # halve a process's speed at times, so each variant's runs fall in two modes and the
        # p50s of the goal can mix them (docs/performance.md, "The runtime's own imports")
        "cold_start_vs_lean_floor_p10": ratio(p10(cold, "ours"), p10(cold, "lean_floor")),
        "cold_start_seed_vs_floor": ratio(p50(cold, "seed"), p50(cold, "floor")),
        "cold_start_seed_vs_lean_floor": ratio(p50(cold, "seed"), p50(cold, "lean_floor")),
        "cold_start_layer_without_bytecode_vs_ours": ratio(
            p50(cold, "ours_nopyc"), p50(cold, "ours")
        ),
        "cold_start_xray_sdk_vs_ours": ratio(p50(cold, "ours_xray_sdk"), p50(cold, "ours")),
        "cold_start_otel_vs_ours": ratio(p50(cold, "ours_otel"), p50(cold, "ours")),
        "cold_start_tracing_off_vs_ours": ratio(p50(cold, "ours_off"), p50(cold, "ours")),
        "int8_bytes_vs_float32_cnn": ratio(
            modes.get("int8", {}).get("bytes", math.nan),
            modes.get("none", {}).get("bytes", math.nan),
            4,
        ),
        "int8_accuracy_drop_points_mlp": round(
            (
                mlp.get("none", {}).get("accuracy", math.nan)
                - mlp.get("int8", {}).get("accuracy", math.nan)
            )
            * 100,
            3,
        ),
    }
    for batch, rows in results.get("warm", {}).get("batches", {}).items():
        out[f"warm_p50_vs_seed_batch{batch}"] = ratio(p50(rows, "seed"), p50(rows, "ours"))
        out[f"warm_p50_seed_vs_floor_batch{batch}"] = ratio(p50(rows, "seed"), p50(rows, "floor"))
        out[f"warm_p50_vs_lean_floor_batch{batch}"] = ratio(
            p50(rows, "ours"), p50(rows, "lean_floor")
        )
        for mode in ("xray_sdk", "otel", "off"):
            if f"ours_{mode}" in rows:
                out[f"warm_p50_{mode}_vs_ours_batch{batch}"] = ratio(
                    p50(rows, f"ours_{mode}"), p50(rows, "ours")
                )
        out[f"warm_p50_seed_predict_vs_ours_batch{batch}"] = ratio(
            p50(rows, "seed_predict"), p50(rows, "ours")
        )
        if "before" in rows:
            out[f"warm_p50_before_vs_ours_batch{batch}"] = ratio(
                p50(rows, "before"), p50(rows, "ours")
            )
        if "ours_capture" in rows:  # what capture being on costs a request it does not keep
            out[f"warm_p50_capture_unsampled_vs_ours_batch{batch}"] = ratio(
                p50(rows, "ours_capture"), p50(rows, "ours")
            )
    if "before" in cold:
        out["cold_start_before_vs_ours"] = ratio(p50(cold, "before"), p50(cold, "ours"))
    return out


def meets(key: str, value: float | None) -> bool | None:
    if value is None or math.isnan(value):
        return None
    op, goal, _ = GOALS[key]
    return value >= goal if op == ">=" else value <= goal


def goals_summary(values: dict) -> str:
    """One line: how many goals this run met, and which it did not (or could not measure)."""
    verdicts = {key: meets(key, values.get(key)) for key in GOALS}
    missed = [key for key, met in verdicts.items() if met is False]
    unmeasured = [key for key, met in verdicts.items() if met is None]
    line = f"Goals met: {sum(1 for met in verdicts.values() if met)} of {len(GOALS)}"
    line += f"; not met: {', '.join(missed)}" if missed else ""
    line += f"; not measured: {', '.join(unmeasured)}" if unmeasured else ""
    return line + "."


def _f(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def table(title: str, header: str, rows: list[str]) -> list[str]:
    """A markdown table: header 'a | b:r | c' (':r' right-aligns a column) and its rows."""
    names = [h.removesuffix(":r") for h in header.split(" | ")]
    aligns = ["---:" if h.endswith(":r") else "---" for h in header.split(" | ")]
    return ["", title, "", f"| {' | '.join(names)} |", f"| {' | '.join(aligns)} |", *rows]


def markdown(results: dict) -> str:
    m = results.get("machine", {})
    out = [
        f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {m.get('memory_gib')} GiB, {m.get('os')}, "
        f"Python {m.get('python')}; load average {m.get('load_before')} before, "
        f"{m.get('load_after')} after. Mode: {results.get('mode')}, "
        f"{results.get('wall_seconds', 0):.0f} s.",
        "",
        "| ratio | value | goal | met |",
        "| --- | ---: | ---: | :---: |",
    ]
    for key, value in results["ratios"].items():
        op, goal, meaning = GOALS[key]
        met = {True: "yes", False: "no", None: "n/a"}[meets(key, value)]
        out.append(f"| `{key}` ({meaning}) | {_f(value)} | {op} {goal} | {met} |")
    out += ["", goals_summary(results["ratios"])]
    if results.get("context"):
        out += table(
            "Context (what the floor itself allows; what packaging and tracing cost):",
            "figure | value:r",
            [f"| `{key}` | {_f(value)} |" for key, value in results["context"].items()],
        )
    pythons = results.get("python", {})
    if cold := results.get("cold_start"):
        rows = []
        for variant, row in cold["variants"].items():
            phases = ", ".join(f"{k} {_f(v, 1)}" for k, v in row["phases_p50_ms"].items())
            figures = " | ".join(_f(row[k], 0) for k in ("p50_ms", "p90_ms", "min_ms"))
            peak = (row.get("peak_rss_mib") or {}).get("p50")
            rows.append(
                f"| {cold['labels'][variant]} | {pythons.get(variant, '')} | {figures} | "
                f"{row['n']} | {_f(peak, 0)} | {phases} |"
            )
        out += table(
            "Cold start (fresh process -> first answered request, model on S3 on loopback), ms:",
            "variant | Python | p50:r | p90:r | min:r | runs:r | peak RSS MiB:r | "
            "breakdown (p50 of each phase)",
            rows,
        )
    if warm := results.get("warm"):
        rows = []
        for batch, variants in warm["batches"].items():
            for variant, row in variants.items():
                rows.append(
                    f"| {batch} | {warm['labels'][variant]} | {pythons.get(variant, '')} | "
                    f"{_f(row['p50_ms'], 3)} | "
                    f"{_f(row['p99_ms'], 3)} | {_f(row['per_instance_p50_us'], 1)} | "
                    f"{_f(ratio(row['p50_ms'], variants['ours']['p50_ms']))}x |"
                )
        out += table(
            "Warm latency through the handler (API Gateway event in, response out), ms:",
            "instances:r | variant | Python | p50:r | p99:r | per instance p50 (µs):r | "
            "p50 vs ours:r",
            rows,
        )
    if memory := results.get("memory"):
        rows = [
            f"| {variant} | {pythons.get(variant, '')} | "
            f"{_f((memory['cold'].get(variant) or {}).get('p50'), 1)} | "
            f"{_f((memory['largest_batch'].get(variant) or {}).get('p50'), 1)} | "
            f"{_f((memory['largest_batch'].get(variant) or {}).get('max'), 1)} |"
            for variant in memory["largest_batch"]
        ]
        out += table(
            f"Peak memory (resident set high-water mark, fresh processes), MiB; the largest batch "
            f"is {memory['largest_batch_instances']} instances (MaxInstances):",
            "variant | Python | cold start p50:r | largest batch p50:r | largest batch max:r",
            rows,
        )
    if (spend := results.get("cost")) and spend.get("computed"):
        out += cost_tables(spend)
    if jobs := results.get("batch"):
        out += batch_table(jobs)
    if quant := results.get("quantization"):
        rows = [
            f"| {row['label']} | {row['bytes']:,} | {_f(row['bytes_vs_float32'])} | "
            f"{row['accuracy']:.2%} | {_f(row['accuracy_drop_points_vs_keras_float'], 1)} | "
            f"{_f(row['invoke_batch1']['p50_ms'], 4)} | {_f(row['invoke_batch256']['p50_ms'], 3)} |"
            for row in quant["modes"].values()
        ]
        mlp = results.get("prepared", {}).get("mlp_modes", {})
        if mlp:
            mlp_float = results["prepared"].get("mlp_keras_float_accuracy", math.nan)
            rows += [
                f"| MLP, {LABELS_MLP[mode]} | {row['bytes']:,} | "
                f"{_f(ratio(row['bytes'], mlp['none']['bytes'], 4), 4)} | {row['accuracy']:.2%} | "
                f"{_f((mlp_float - row['accuracy']) * 100, 1)} | | |"
                for mode, row in mlp.items()
            ]
        out += table(
            f"Quantization modes (the served CNN 4 ways, and the MLP, float32 and int8; same "
            f"{quant['test_size']}-digit test split; CNN's "
            f"Keras float accuracy {quant['keras_float_accuracy']:.2%}), invoke time ms:",
            "mode | bytes:r | vs float32:r | accuracy:r | drop (points):r | invoke p50, 1:r | "
            "invoke p50, 256:r",
            rows,
        )
    if package := results.get("package"):
        limit = package["lambda_unzipped_limit_mib"]
        rows = [
            f"| {name} ({part['kind']}) | {_f(part['zipped_bytes'] / 1_048_576)} | "
            f"{_f(part['unzipped_bytes'] / 1_048_576)} | |"
            for name, part in package.get("parts", {}).items()
        ]
        rows.append(
            f"| **function + layers** | {_f(package.get('zipped_mib'))} | "
            f"{_f(package.get('unzipped_mib'))} | {limit} |"
        )
        tf = package["tensorflow"]
        rows.append(
            f"| tensorflow-cpu + its dependencies ({tf['distributions']} distributions, .venv "
            f"x86_64 cp311) | | {_f(tf['unzipped_mib'], 0)} | {limit} |"
        )
        out += table(
            f"Deployment size ({package['source']}), MiB:",
            "package | zipped:r | unzipped:r | Lambda limit (unzipped):r",
            rows,
        )
    if scale := results.get("model_scale"):
        rows = [
            f"| {row['bytes'] / 1_048_576:.1f} MiB | {_f(row['ours']['p50_ms'], 1)} | "
            f"{_f(row['lean_floor']['p50_ms'], 1)} | {_f(row['ours_vs_lean_floor'])} | "
            f"{_f(row['plain_download_file']['p50_ms'], 1)} | "
            f"{_f(row['plain_get_object']['p50_ms'], 1)} | {_f(row['ours_vs_plain_download'])} | "
            f"{_f(row['ours_with_default_checksum_client']['p50_ms'], 1)} | "
            f"{_f(row['ours_mb_per_s'], 0)} |"
            for row in scale.values()
        ]
        out += table(
            "Model scale: the function's fetch-verify-load (pointer, manifest, stream + sha256, "
            "interpreter, warm-up) beside the lean floor (one obstore GET into memory, the "
            "interpreter built from it and run once) and a plain boto3 download of the same object "
            "(the faster of download_file and get_object), p50 ms:",
            "model | ours:r | lean floor:r | ours / lean floor:r | plain download_file:r | "
            "plain get_object:r | ours / plain:r | "
            "ours with boto3's default checksum validation:r | ours MiB/s:r",
            rows,
        )
    if (api := results.get("local_api")) is not None:
        title = "Local API (informational; production scaling is Lambda's):"
        if api.get("measured"):
            rows = [
                f"| {clients} | {_f(row['requests_per_second'], 0)} | "
                f"{_f(row['latency']['p50_ms'], 1)} | {_f(row['latency']['p99_ms'], 1)} |"
                for clients, row in api["clients"].items()
            ]
            out += table(title, "clients:r | requests/s:r | p50 ms:r | p99 ms:r", rows)
        else:
            out += ["", title, "", f"not measured: {api.get('reason')}"]
    return "\n".join(out) + "\n"


def batch_table(jobs: dict) -> list[str]:
    """Batch jobs beside the HTTP API, the same images (bench/batch.py)."""
    rows = []
    for size, row in jobs["sizes"].items():
        ips, usd = row["images_per_second"], row["per_million_images_usd"]
        rows.append(
            f"| {size} | {_f(row['batch_ms']['p50_ms'], 1)} | {_f(ips['batch'], 0)} | "
            f"{_f(ips['http_api'], 0)} | {_f(row['throughput_ratio_batch_vs_api'])} | "
            f"{usd['batch']['lambda']:.4f} | {usd['batch']['step_functions']:.4f} | "
            f"{usd['batch']['s3']:.4f} | {usd['batch']['total']:.4f} | "
            f"{usd['http_api']['total']:.4f} |"
        )
    return table(
        f"Batch jobs beside the HTTP API, the same digit PNGs (one environment each, "
        f"MemorySize {jobs['memory_mb']} MB; the HTTP API one image a request; prices of "
        f"{jobs['prices']['read_on']}, {jobs['prices']['region']}), USD per million images:",
        "BatchSize:r | batch p50 ms:r | images/s per environment, batch:r | "
        "images/s per environment, HTTP API:r | batch / API:r | batch: Lambda:r | "
        "batch: Step Functions:r | batch: S3:r | batch total:r | HTTP API total:r",
        rows,
    )


def cost_tables(spend: dict) -> list[str]:
    prices, measured = spend["prices"], spend["measured_ms_this_machine"]
    lines = table(
        f"Billed duration per MemorySize, ms (this machine's p50: cold start "
        f"{_f(measured['cold_start'], 0)}, warm batch 1 {_f(measured['warm_batch1'], 3)}, "
        f"batch 32 {_f(measured['warm_batch32'], 3)}; {spend['model']}):",
        "MemorySize MB:r | warm batch 1:r | warm batch 32:r | cold start (INIT billed):r | "
        "USD per million cold starts:r",
        [
            f"| {r['memory_mb']} | {r['billed_ms']['warm_batch1']} | "
            f"{r['billed_ms']['warm_batch32']} | {r['billed_ms']['cold_start']} | "
            f"{_f(r['per_million_cold_starts'])} |"
            for r in spend["rows"]
        ],
    )
    for batch in ("1", "32"):
        lines += table(
            f"USD per million predictions, warm, {batch} instance(s) a request (prices of "
            f"{prices['read_on']}, {prices['region']}):",
            "MemorySize MB:r | Lambda alone:r | + REST API:r | + HTTP API:r | "
            "+ function URL:r | SageMaker Serverless (InvokeEndpoint, no front door):r",
            [
                "| {m} | {lambda_only:.4f} | {lambda_rest_api:.4f} | {lambda_http_api:.4f} | "
                "{lambda_function_url:.4f} | {sm} |".format(
                    m=r["memory_mb"],
                    sm=_f(r["per_million_predictions"][batch]["sagemaker_serverless"], 4),
                    **{
                        k: v
                        for k, v in r["per_million_predictions"][batch].items()
                        if k != "sagemaker_serverless"
                    },
                )
                for r in spend["rows"]
            ],
        )
    return lines
