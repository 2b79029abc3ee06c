"""Measure 7: peak memory (resident set, the kernel's high-water mark) of the largest request
the template allows: a fresh process per run answers its cold start's first request, then one
request of MaxInstances instances, reports its peak resident memory (VmHWM) and exits. Ours
beside the lean floor, interleaved. The cold start's own peak comes from the cold section's
processes (each reports it after its first answer, then exits)."""

from __future__ import annotations

from pathlib import Path

from bench.cold import fresh, peak_summary
from bench.common import rotations


def run(config: dict, envs: dict, pythons: dict, work: Path, runs: int, log) -> dict:
    peaks: dict[str, list[float]] = {v: [] for v in envs}
    for number, order in rotations(list(envs), runs):
        for variant in order:
            peaks[variant].append(one(variant, config, envs[variant], pythons[variant], work))
        done = ", ".join(f"{v} {p[-1]:.0f} MiB" for v, p in peaks.items())
        log(f"  largest batch round {number + 1}/{runs}: {done}")
    return {v: peak_summary(p) for v, p in peaks.items()}


def one(variant: str, config: dict, env: dict, python: list[str], work: Path) -> float:
    with fresh(variant, "largest-batch", config, env, python, work) as child:
        child.read(timeout=180)  # the cold start's answer
        reply, _ = child.read(timeout=180)  # the largest batch's
    if reply["status"] != 200:
        raise RuntimeError(f"the largest batch of {variant} answered {reply}")
    return reply["peak_rss_kib"] / 1024
