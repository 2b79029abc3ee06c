"""Measure 2: warm latency through each variant's handler, batches of 1, 32 and 256 instances.

One long-lived child process per variant (an execution environment each). The parent asks
them in turn (the order rotates each round) for a few timed requests at a time, so every
variant sees the same machine noise; each child times `handler(event, context)` itself.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import rotations, summary_ms
from bench.procs import Child


def start(config_path: Path, envs: dict, pythons: dict, work: Path) -> dict[str, Child]:
    workers: dict[str, Child] = {}
    try:
        for variant, env in envs.items():
            log_path = work / f"warm-{variant}.log"
            workers[variant] = Child(variant, "warm", config_path, env, log_path, pythons[variant])
        for worker in workers.values():
            worker.read()  # its cold start is over
    except BaseException:
        stop(workers)
        raise
    return workers


def run(workers: dict[str, Child], plan: dict[str, dict], log) -> dict:
    """plan: batch -> {"rounds": R, "per_round": k, "per_round_by_variant": {variant: k}}."""
    results: dict[str, dict] = {}
    for batch, spec in plan.items():
        samples: dict[str, list[int]] = {v: [] for v in workers}
        for _, order in rotations(list(workers), spec["rounds"]):
            for variant in order:
                n = spec.get("per_round_by_variant", {}).get(variant, spec["per_round"])
                samples[variant] += workers[variant].request({"op": "run", "batch": batch, "n": n})[
                    "ns"
                ]
        results[batch] = {}
        for variant, values in samples.items():
            stats = summary_ms(values)
            stats["per_instance_p50_us"] = round(stats["p50_ms"] * 1000 / int(batch), 3)
            results[batch][variant] = stats
        figures = (f"{v} p50 {s['p50_ms']:.3f} ms" for v, s in results[batch].items())
        log(f"  warm batch {batch}: " + ", ".join(figures))
    return results


def agreement(workers: dict[str, Child], batches) -> dict:
    """Do the variants give the same answers? (ours and the floor run the same int8 model.)"""
    out = {}
    for batch in batches:
        answers = {
            v: w.request({"op": "answer", "batch": batch})["labels"] for v, w in workers.items()
        }
        ours = answers["ours"]
        out[batch] = {
            v: round(sum(a == b for a, b in zip(ours, other, strict=True)) / len(ours), 4)
            for v, other in answers.items()
            if v != "ours"
        }
    return out


def answer_bytes(workers: dict[str, Child], batches) -> dict[str, int]:
    """The size of our answer's body for each batch (what a front door or SageMaker meters)."""
    return {b: workers["ours"].request({"op": "answer", "batch": b})["body_bytes"] for b in batches}


def stop(workers: dict[str, Child]) -> None:
    for worker in workers.values():
        worker.close(wait=False)  # all at once: TensorFlow takes a while to exit
    for worker in workers.values():
        worker.close()
