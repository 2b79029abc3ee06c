"""Measure 2: warm latency through each variant's handler, batches of 1, 32 and 256 instances.

One long-lived worker process per variant (an execution environment each). The parent asks
them in turn (the order rotates each round) for a few timed requests at a time, so every
variant sees the same machine noise; each worker times `handler(event, context)` itself.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import summary_ms
from bench.procs import Child

VARIANTS = ("ours", "ours_untraced", "floor", "seed", "seed_predict")


def start_workers(
    variants,
    config_path: Path,
    env: dict[str, str],
    work: Path,
    variant_env: dict[str, dict[str, str]] | None = None,
    python_for: dict[str, list[str]] | None = None,
) -> dict[str, Child]:
    workers = {}
    try:
        for variant in variants:
            workers[variant] = Child(
                "worker.py",
                variant,
                config_path,
                {**env, **(variant_env or {}).get(variant, {})},
                work / f"warm-{variant}.log",
                stdin=True,
                python=(python_for or {}).get(variant),
            )
        for worker in workers.values():
            worker.read(timeout=300)
    except BaseException:
        for worker in workers.values():
            worker.close()
        raise
    return workers


def run(workers: dict[str, Child], plan: dict[str, dict], log=print) -> dict:
    """plan: batch -> {"rounds": R, "per_round": k, "skip": [variants]}."""
    results: dict[str, dict] = {}
    for batch, spec in plan.items():
        variants = [v for v in workers if v not in spec.get("skip", ())]
        samples: dict[str, list[int]] = {v: [] for v in variants}
        for round_number in range(spec["rounds"]):
            shift = round_number % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                per_round = spec.get("per_round_by_variant", {}).get(variant, spec["per_round"])
                if per_round == 0:
                    continue
                reply = workers[variant].request({"op": "run", "batch": batch, "n": per_round})
                if "ns" not in reply:
                    raise RuntimeError(f"{variant} failed at batch {batch}: {reply}")
                samples[variant] += reply["ns"]
        results[batch] = {}
        for variant, values in samples.items():
            stats = summary_ms(values)
            stats["per_instance_p50_us"] = round(stats["p50_ms"] * 1000 / int(batch), 3)
            results[batch][variant] = stats
        log(
            f"  warm batch {batch}: "
            + ", ".join(
                f"{v} p50 {s['p50_ms']:.3f} ms p99 {s['p99_ms']:.3f}"
                for v, s in results[batch].items()
            )
        )
    return results


def agreement(workers: dict[str, Child], batches) -> dict:
    """Do the variants give the same answers? (ours and the floor run the same int8 model.)"""
    out = {}
    for batch in batches:
        labels = {
            v: w.request({"op": "answer", "batch": batch})["labels"] for v, w in workers.items()
        }
        ours = labels.get("ours")
        out[batch] = {
            v: round(sum(a == b for a, b in zip(ours, other, strict=True)) / len(ours), 4)
            for v, other in labels.items()
            if v != "ours" and ours
        }
    return out


def profile(worker: Child, batch: str, n: int, out: Path) -> Path:
    worker.request({"op": "profile", "batch": batch, "n": n, "out": str(out)}, timeout=600)
    return out


def stop(workers: dict[str, Child]) -> None:
    for worker in workers.values():
        worker.close()
