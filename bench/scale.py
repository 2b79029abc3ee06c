"""Measure 5: model size ~1, 10, 100 MB through the function's own fetch-verify-load path
(model_store.ModelStore: pointer -> manifest -> stream + sha256 -> interpreter -> warm-up),
beside a plain boto3 download of the same object. Interleaved, persistent clients on both sides.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BUCKET, FUNCTION_DIR, PREFIX, ratio, summary_ms


def _store_modules():
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    import config
    import model_store

    return config, model_store


def run(synthetic: dict, work: Path, rounds: dict[str, int], log=print) -> dict:
    import boto3

    config, model_store = _store_modules()
    ours_client = model_store.create_s3_client()  # the function's own client configuration
    plain_client = boto3.client("s3")  # boto3's defaults
    results = {}
    for size, info in synthetic.items():
        name = info["name"]
        key = f"{PREFIX}/{name}/{info['version']}/model.tflite"

        def ours(s3=ours_client, name=name):
            cache = Path(tempfile.mkdtemp(dir=work))
            try:
                settings = config.Settings(
                    bucket=BUCKET, prefix=PREFIX, model_name=name, cache_dir=str(cache)
                )
                store = model_store.ModelStore(settings, s3=s3)
                started = time.perf_counter_ns()
                model = store.get()
                elapsed = time.perf_counter_ns() - started
                return elapsed, model.timings_ms
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        def download_file(key=key):
            cache = Path(tempfile.mkdtemp(dir=work))
            try:
                started = time.perf_counter_ns()
                plain_client.download_file(BUCKET, key, str(cache / "model.tflite"))
                return time.perf_counter_ns() - started, None
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        def get_object(key=key):
            cache = Path(tempfile.mkdtemp(dir=work))
            try:
                started = time.perf_counter_ns()
                body = plain_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                (cache / "model.tflite").write_bytes(body)
                return time.perf_counter_ns() - started, None
            finally:
                shutil.rmtree(cache, ignore_errors=True)

        cases = {
            "ours": ours,
            "plain_download_file": download_file,
            "plain_get_object": get_object,
            "ours_with_default_checksum_client": lambda: ours(s3=plain_client),
        }
        for case in cases.values():  # connections open, caches warm: steady state on both sides
            case()
        samples: dict[str, list[int]] = {c: [] for c in cases}
        steps: list[dict] = []
        names = list(cases)
        for round_number in range(rounds.get(size, 3)):
            shift = round_number % len(names)
            for case in names[shift:] + names[:shift]:
                elapsed, timings = cases[case]()
                samples[case].append(elapsed)
                if case == "ours":
                    steps.append(timings)
        row = {"bytes": info["bytes"], **{c: summary_ms(v) for c, v in samples.items()}}
        row["ours_steps_p50_ms"] = {
            k: round(sorted(s[k] for s in steps)[len(steps) // 2], 3) for k in steps[0]
        }
        # The baseline is the faster of the two plain boto3 downloads (download_file's threaded
        # ranged GETs can lose to one streamed GET on loopback), so the ratio never flatters us.
        base = min(row["plain_download_file"]["p50_ms"], row["plain_get_object"]["p50_ms"])
        row["plain_download_p50_ms"] = base
        row["ours_vs_plain_download"] = ratio(row["ours"]["p50_ms"], base)
        row["ours_vs_download_file"] = ratio(
            row["ours"]["p50_ms"], row["plain_download_file"]["p50_ms"]
        )
        row["ours_vs_get_object"] = ratio(row["ours"]["p50_ms"], row["plain_get_object"]["p50_ms"])
        row["plain_download_mb_per_s"] = round(info["bytes"] / 1_048_576 / (base / 1000), 1)
        row["default_checksum_client_vs_ours"] = ratio(
            row["ours_with_default_checksum_client"]["p50_ms"], row["ours"]["p50_ms"]
        )
        row["ours_mb_per_s"] = round(info["bytes"] / 1_048_576 / (row["ours"]["p50_ms"] / 1000), 1)
        results[size] = row
        log(
            f"  scale {size} MB: ours {row['ours']['p50_ms']:.1f} ms, "
            f"download_file {row['plain_download_file']['p50_ms']:.1f} ms, "
            f"get_object {row['plain_get_object']['p50_ms']:.1f} ms, "
            f"ours+default checksum {row['ours_with_default_checksum_client']['p50_ms']:.1f} ms"
        )
    return results
