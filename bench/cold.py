"""Measure 1: cold start in fresh processes, ours beside the seed's path and the floor.

Wall time from just before Popen to the moment the parent reads the first answer; each child
prints its own phase breakdown. Runs are interleaved (the order rotates each round).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import percentile, summary_ms
from bench.procs import Child

VARIANTS = ("ours", "ours_untraced", "floor", "seed")


def run(
    config: dict,
    env: dict[str, str],
    work: Path,
    runs: int,
    seed_runs: int,
    log=print,
    variant_env: dict[str, dict[str, str]] | None = None,
    variants: tuple[str, ...] = VARIANTS,
    python_for: dict[str, list[str]] | None = None,
) -> dict:
    samples: dict[str, list[dict]] = {v: [] for v in variants}
    work.mkdir(parents=True, exist_ok=True)
    for round_number in range(runs):
        order = [v for v in variants if v != "seed" or round_number < seed_runs]
        shift = round_number % len(order)
        for variant in order[shift:] + order[:shift]:
            samples[variant].append(
                one(
                    variant,
                    config,
                    {**env, **(variant_env or {}).get(variant, {})},
                    work,
                    (python_for or {}).get(variant),
                )
            )
        log(
            f"  cold round {round_number + 1}/{runs}: "
            + ", ".join(f"{v} {samples[v][-1]['total_ms']:.0f} ms" for v in order)
        )
    return {v: summarize(samples[v]) for v in variants if samples[v]}


def one(
    variant: str, config: dict, env: dict[str, str], work: Path, python: list[str] | None = None
) -> dict:
    cache_dir = Path(tempfile.mkdtemp(prefix=f"cold-{variant}-", dir=work))
    config_path = cache_dir / "config.json"
    config_path.write_text(json.dumps({**config, "cache_dir": str(cache_dir)}))
    child_env = {**env, "MODEL_CACHE_DIR": str(cache_dir / "models")}
    child = Child(
        "cold_child.py",
        variant,
        config_path,
        child_env,
        work / f"cold-{variant}.log",
        python=python,
    )
    try:
        reply, received = child.read(timeout=180)
    finally:
        child.close()
        shutil.rmtree(cache_dir, ignore_errors=True)
    if reply["status"] != 200:
        raise RuntimeError(
            f"cold start of {variant} answered {reply['status']} {reply.get('error')}"
        )
    phases = {
        "process_start": (reply["t0"] - child.started_ns) / 1e6,
        **reply["phases_ms"],
        "answer_delivery": (received - reply["answered"]) / 1e6,
    }
    return {
        "total_ms": (received - child.started_ns) / 1e6,
        "phases_ms": phases,
        "labels": reply["labels"],
    }


def summarize(samples: list[dict]) -> dict:
    totals = [s["total_ms"] for s in samples]
    names: list[str] = []
    for s in samples:
        names += [k for k in s["phases_ms"] if k not in names]
    return {
        **summary_ms(totals, scale=1.0),
        "runs_ms": [round(t, 2) for t in totals],
        "phases_p50_ms": {
            k: round(percentile([s["phases_ms"].get(k, 0.0) for s in samples], 50), 3)
            for k in names
        },
        "labels": samples[0]["labels"],
    }


def wait_quiet(seconds: float = 0.0) -> None:
    if seconds:
        time.sleep(seconds)
