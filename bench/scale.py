"""Measure 5: model size ~1, 10, 100 MB through the function's own fetch-verify-load path
(model_store.ModelStore: pointer -> manifest -> stream + sha256 -> interpreter -> warm-up),
beside a plain boto3 download of the same object, and beside the lean floor doing the same without
verification (bench/lean_floor.py's work: one obstore GET into memory, the interpreter built from
it and run once, as ours is warmed up; no pointer, manifest, hash or checks). Interleaved,
persistent clients on every side.
Each case's CPU time in this process (its client side; the S3 server's is not counted) says what
the wall times cannot on 2 shared cores: how much work each side does.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import lean_floor
from bench.common import FUNCTION_DIR, ratio, rotations, summary_ms


def run(synthetic: dict, env: dict[str, str], work: Path, rounds: dict[str, int], log) -> dict:
    """synthetic: size -> {name, bytes}; env: the function's environment (its settings)."""
    import boto3

    from bench.floor import Floor  # LiteRT, imported by this section only

    sys.path.insert(0, str(FUNCTION_DIR))
    import config
    import model_store
    from mlcore.registry import Registry

    settings = config.load_settings(env)
    ours_client = model_store.create_s3_client()  # the function's own client configuration
    plain_client = boto3.client("s3")  # boto3's defaults
    lean_store = lean_floor.s3_client()(settings.bucket)  # obstore, one store kept open
    results = {}
    for size, info in synthetic.items():
        name = info["name"]
        key = Registry(settings.prefix, name).model_key(info["version"])

        def timed(step, *args):
            """(ns, CPU ns of this process, the step's result), in a fresh cache folder removed
            after. What the step made (the loaded model, the downloaded bytes) is freed after the
            clock stops, on both sides: freeing it is not part of getting it (the interpreter of
            a 100 MB model unmaps ~100 MB of packed weights, about 14 ms)."""
            cache = Path(tempfile.mkdtemp(dir=work))
            try:
                cpu, started = time.process_time_ns(), time.perf_counter_ns()
                value, made = step(cache, *args)
                elapsed = time.perf_counter_ns() - started
                cpu_ns = time.process_time_ns() - cpu
                del made
                return elapsed, cpu_ns, value
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        def ours(cache, s3, name=name):
            store_settings = dataclasses.replace(settings, model_name=name, cache_dir=str(cache))
            store = model_store.ModelStore(store_settings, lambda: s3)
            model = store.get()
            return model.timings_ms, (store, model)

        def download_file(cache, key=key):
            plain_client.download_file(settings.bucket, key, str(cache / "model.tflite"))
            return None, None

        def get_object(cache, key=key):
            body = plain_client.get_object(Bucket=settings.bucket, Key=key)["Body"].read()
            (cache / "model.tflite").write_bytes(body)
            return None, body

        def lean(cache, key=key):
            import obstore

            model = obstore.get(lean_store, key).bytes().to_bytes()
            floor = Floor(model)
            floor.run(np.zeros((1, *floor.shape), np.float32))  # ready: run once, as ours is
            return None, (model, floor)

        cases = {
            "ours": lambda: timed(ours, ours_client),
            "lean_floor": lambda: timed(lean),
            "plain_download_file": lambda: timed(download_file),
            "plain_get_object": lambda: timed(get_object),
            "ours_with_default_checksum_client": lambda: timed(ours, plain_client),
        }
        for case in cases.values():  # connections open, caches warm: steady state on both sides
            case()
        samples: dict[str, list[int]] = {c: [] for c in cases}
        cpu: dict[str, list[int]] = {c: [] for c in cases}
        steps: list[dict] = []
        for _, order in rotations(list(cases), rounds.get(size, 3)):
            for case in order:
                elapsed, cpu_ns, timings = cases[case]()
                samples[case].append(elapsed)
                cpu[case].append(cpu_ns)
                if case == "ours":
                    steps.append(timings)
        row = {"bytes": info["bytes"], **{c: summary_ms(v) for c, v in samples.items()}}
        row["ours_steps_p50_ms"] = {
            k: round(float(np.median([s[k] for s in steps])), 3) for k in steps[0]
        }
        row["process_cpu_p50_ms"] = {c: round(float(np.median(v)) / 1e6, 1) for c, v in cpu.items()}
        p50 = {c: row[c]["p50_ms"] for c in cases}
        # The baseline is the faster of the two plain boto3 downloads (download_file's threaded
        # ranged GETs can lose to one streamed GET on loopback), so the ratio never flatters us.
        base = min(p50["plain_download_file"], p50["plain_get_object"])
        mib = info["bytes"] / 1_048_576
        row |= {
            "plain_download_p50_ms": base,
            "ours_vs_plain_download": ratio(p50["ours"], base),
            "ours_vs_lean_floor": ratio(p50["ours"], p50["lean_floor"]),
            "ours_vs_download_file": ratio(p50["ours"], p50["plain_download_file"]),
            "ours_vs_get_object": ratio(p50["ours"], p50["plain_get_object"]),
            "plain_download_mb_per_s": round(mib / (base / 1000), 1),
            "default_checksum_client_vs_ours": ratio(
                p50["ours_with_default_checksum_client"], p50["ours"]
            ),
            "ours_mb_per_s": round(mib / (p50["ours"] / 1000), 1),
        }
        results[size] = row
        log(f"  scale {size} MB, p50 ms: " + ", ".join(f"{c} {v:.1f}" for c, v in p50.items()))
        log("    CPU ms: " + ", ".join(f"{c} {v}" for c, v in row["process_cpu_p50_ms"].items()))
    return results
