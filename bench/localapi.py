"""Measure 6 (informational): the local API's requests per second at 1 and 20 concurrent clients.

Production scaling is Lambda's (one request per execution environment, as many environments as
the concurrency limit allows); this is the Docker-free emulator on this machine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import requests

from bench.common import BUCKET, summary_ms
from local.processes import free_port, local_api


def run(body: bytes, env: dict, work: Path, clients: list[int], seconds: float, log) -> dict:
    port, key = free_port(), "bench-api-key-0123456789"
    options = ["--api-key", key, "--quiet", "--parameter-overrides", f"BucketName={BUCKET}"]
    try:
        with local_api(
            *options, port=port, state_dir=work / "state", log=work / "api.log", env=env
        ):
            url, ca = f"https://127.0.0.1:{port}/predict", str(work / "state" / "ca.pem")
            post = {"data": body, "headers": {"x-api-key": key}, "verify": ca, "timeout": 60}
            post["headers"]["Content-Type"] = "application/json"
            with requests.Session() as session:  # the first requests start environments
                for _ in range(max(clients) + 2):
                    response = session.post(url, **post)
                    if response.status_code != 200:
                        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
            results = {}
            for count in clients:
                results[str(count)] = row = load(url, post, count, seconds)
                log(
                    f"  local API, {count} clients: {row['requests_per_second']:.0f} req/s, "
                    f"p50 {row['latency']['p50_ms']:.1f} ms"
                )
    except Exception as exc:  # informational: never fail the bench for it
        return {"measured": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {
        "measured": True,
        "scheme": "https (the local API's own certificate, keep-alive sessions)",
        "endpoint": "POST /predict, 1 instance",
        "seconds_per_level": seconds,
        "clients": results,
    }


def load(url: str, post: dict, clients: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    latencies: list[int] = []
    failures: list[int] = []

    def client() -> None:
        with requests.Session() as session:  # closed: the server stops without waiting for it
            while time.monotonic() < stop:
                started = time.perf_counter_ns()
                try:
                    ok = session.post(url, **post).status_code == 200
                except requests.RequestException:
                    ok = False
                (latencies if ok else failures).append(time.perf_counter_ns() - started)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "requests": len(latencies),
        "failures": len(failures),
        "requests_per_second": round(len(latencies) / (time.monotonic() - started), 1),
        "latency": summary_ms(latencies),
    }
