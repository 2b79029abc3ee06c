"""Measure 1: cold start in fresh processes, ours beside the seed's path and the floor.

Wall time from just before Popen to the moment the parent reads the first answer; each child
sends its own phase breakdown. Runs are interleaved (the order rotates each round).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from bench.common import rotations, summary_ms
from bench.procs import Child


def run(config: dict, envs: dict, pythons: dict, work: Path, runs: int, seed_runs: int, log):
    """envs/pythons: variant -> its environment / interpreter command; seed: seed_runs only."""
    samples: dict[str, list[dict]] = {v: [] for v in envs}
    for number, order in rotations(list(envs), runs):
        for variant in order:
            if variant != "seed" or number < seed_runs:
                samples[variant].append(one(variant, config, envs[variant], pythons[variant], work))
        done = ", ".join(f"{v} {s[-1]['total_ms']:.0f} ms" for v, s in samples.items() if s)
        log(f"  cold round {number + 1}/{runs}: {done}")
    return {v: summarize(s) for v, s in samples.items()}


@contextlib.contextmanager
def fresh(variant: str, mode: str, config: dict, env: dict, python: list[str], work: Path):
    """A new execution environment of `variant` in `mode`, with a model cache of its own;
    stopped and its cache removed after."""
    cache_dir = Path(tempfile.mkdtemp(prefix=f"{mode}-{variant}-", dir=work))
    config_path = cache_dir / "config.json"
    config_path.write_text(json.dumps({**config, "cache_dir": str(cache_dir)}))
    env = {**env, "MODEL_CACHE_DIR": str(cache_dir / "models")}
    child = Child(variant, mode, config_path, env, work / f"{mode}-{variant}.log", python)
    try:
        yield child
    finally:
        child.close()
        shutil.rmtree(cache_dir, ignore_errors=True)


def one(variant: str, config: dict, env: dict, python: list[str], work: Path) -> dict:
    with fresh(variant, "cold", config, env, python, work) as child:
        reply, received = child.read(timeout=180)
        peak = child.read(timeout=60)[0]["peak_rss_kib"] / 1024  # then it exits
    if reply["status"] != 200:
        raise RuntimeError(f"cold start of {variant} answered {reply}")
    phases = {
        "process_start": (reply["t0"] - child.started_ns) / 1e6,
        **reply["phases_ms"],
        "answer_delivery": (received - reply["answered"]) / 1e6,
    }
    total = (received - child.started_ns) / 1e6
    return {
        "total_ms": total,
        "phases_ms": phases,
        "labels": reply["labels"],
        "peak_rss_mib": peak,
    }


def summarize(samples: list[dict]) -> dict:
    totals = [s["total_ms"] for s in samples]
    names = list(dict.fromkeys(k for s in samples for k in s["phases_ms"]))
    phases = {k: [s["phases_ms"].get(k, 0.0) for s in samples] for k in names}
    peaks = [s["peak_rss_mib"] for s in samples if s.get("peak_rss_mib") is not None]
    return {
        **summary_ms(totals, scale=1.0),
        "runs_ms": [round(t, 2) for t in totals],
        "peak_rss_mib": peak_summary(peaks),
        "phases_p50_ms": {k: round(float(np.median(v)), 3) for k, v in phases.items()},
        "labels": samples[0]["labels"],
    }


def peak_summary(peaks: list[float]) -> dict:
    """Peak resident memory over runs, MiB: p50, max and n."""
    if not peaks:
        return {"n": 0, "p50": None, "max": None}
    return {"n": len(peaks), "p50": round(float(np.median(peaks)), 2), "max": round(max(peaks), 2)}
