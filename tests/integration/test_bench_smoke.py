"""`python -m bench --quick` end to end: every section runs and the JSON has every ratio.

A smoke test of the harness only: it asserts the shape of the results, never a timing
(figures from a --quick run on a shared machine mean nothing).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RATIOS = (  # the goals: issue 29's, then the guards (issues 12 and 15)
    "cold_start_vs_lean_floor",
    "warm_p50_vs_floor",
    "warm_p50_vs_floor_batch32",
    "warm_p50_vs_floor_batch256",
    "peak_rss_vs_lean_floor_cold",
    "peak_rss_vs_lean_floor_largest_batch",
    "large_model_load_vs_lean_floor",
    "cold_start_vs_seed",
    "int8_bytes_vs_float32",
    "int8_accuracy_drop_points",
    "package_unzipped_mb",
    "cold_start_signed_vs_ours",
)


@pytest.mark.integration
@pytest.mark.slow  # half a minute of bench; `make test-slow` (CI runs it)
def test_bench_quick_writes_every_ratio_as_a_number(tmp_path):
    out = tmp_path / "results.json"
    committed = (ROOT / "bench" / "results.json").read_bytes()
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(out.read_text())

    ratios = results["ratios"]
    assert set(RATIOS) <= set(ratios)
    for key in RATIOS:
        value = ratios[key]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value), (key, value)
    assert set(results["goals"]) == set(RATIOS)

    # every comparison has its baseline beside it
    tracing_modes = {"ours_xray_sdk", "ours_otel", "ours_off"}  # beside ours (TracingMode lambda)
    baselines = {"ours", "lean_floor", "floor", "seed"} | tracing_modes
    assert baselines <= set(results["cold_start"]["variants"])
    for batch in ("1", "32", "256"):
        assert baselines | {"seed_predict"} <= set(results["warm"]["batches"][batch])
    assert set(results["prepared"]["mlp_modes"]) == {"none", "int8"}  # int8_bytes_vs_float32
    assert set(results["quantization"]["modes"]) == {"none", "float16", "dynamic", "int8"}
    assert len(results["model_scale"]) >= 2  # model sizes side by side
    assert results["local_api"]["measured"], results["local_api"]
    # TracingMode xray-sdk and otel run as on Lambda: segments and spans reached the bench's
    # daemon socket
    assert results["xray_segments_received"]["xray_sdk"] > 0
    assert results["xray_segments_received"]["otel"] > 0
    # ours and the floors serve the same int8 model: the same answers
    assert results["warm"]["label_agreement_with_ours"]["1"]["floor"] == 1.0
    assert results["warm"]["label_agreement_with_ours"]["1"]["lean_floor"] == 1.0

    # the function's rows ran on the Lambda runtime's Python (.venv-function), the seed's on
    # .venv's; results.json says which measured each row
    lambda_rows = baselines - {"seed"}
    assert {results["python"][v] for v in lambda_rows} == {"3.13.0"}, results["python"]
    assert results["python"]["seed"] == results["machine"]["python"]
    # each function row and floor first paid the imports of Lambda's own runtime (awslambdaric),
    # as Lambda does before any handler; the seed's row, off that path, did not
    cold_rows = results["cold_start"]["variants"]
    for variant in lambda_rows:
        assert cold_rows[variant]["phases_p50_ms"]["runtime_bootstrap"] > 0, variant
    assert "runtime_bootstrap" not in cold_rows["seed"]["phases_p50_ms"]
    # peak memory: cold and at the largest batch the template allows, ours beside the lean
    # floor; each a number of MiB no smaller than a bare interpreter's
    memory = results["memory"]
    assert memory["largest_batch_instances"] == 256
    for phase in ("cold", "largest_batch"):
        for variant in ("ours", "lean_floor"):
            assert 10 < memory[phase][variant]["p50"] < 2000, (phase, variant, memory)
        assert math.isfinite(results["ratios"][f"peak_rss_vs_lean_floor_{phase}"])
    # the cost section, from this run's durations: every MemorySize, each front door
    cost = results["cost"]
    assert [row["memory_mb"] for row in cost["rows"]] == [512, 1024, 1769, 3008]
    for row in cost["rows"]:
        per_million = row["per_million_predictions"]["1"]
        assert per_million["lambda_rest_api"] > per_million["lambda_http_api"]
        assert per_million["lambda_http_api"] > per_million["lambda_function_url"] > 0
    assert cost["prices"]["read_on"] and cost["prices"]["sources"]
    # batch jobs beside the HTTP API: every image of each batch answered, both rates measured,
    # and a batch of 200 cheaper per image than one of 10 (fewer children and invocations)
    jobs = results["batch"]["sizes"]
    assert set(jobs) == {"10", "200"}
    for size, row in jobs.items():
        assert row["answered"] == int(size)
        assert row["images_per_second"]["batch"] > 0 and row["images_per_second"]["http_api"] > 0
    per_image = {size: row["per_million_images_usd"]["batch"] for size, row in jobs.items()}
    assert per_image["200"]["step_functions"] < per_image["10"]["step_functions"]
    assert "Batch jobs beside the HTTP API" in completed.stdout

    # the markdown table goes to stdout, the ratios first
    assert "| ratio | value | goal | met |" in completed.stdout
    assert "Goals met: " in completed.stdout  # which goals this run met, in one line
    for key in RATIOS:
        assert f"`{key}`" in completed.stdout
    # the committed results are not touched by a run with --out
    assert (ROOT / "bench" / "results.json").read_bytes() == committed
