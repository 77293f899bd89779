"""Load benchmark: gunicorn on loopback, a Zipf query mix from keep-alive threads, cached and uncached.

    .venv/bin/python bench/load.py [--catalogue PATH] [--seconds 20] [--concurrency 4]

Builds (or reuses) an index under ``--data-dir`` (outside the repository), starts the ``web`` process
twice (Redis cache on, then ``RECSYS_CACHE=off``) and writes ``bench/results/load.json``. The load
generator runs on the same machine, so it competes with the server for the CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CROWDFLOWER = Path("/work/shared/data/crowdflower")


def query_pool(catalogue: Path) -> list[str]:
    pool: list[str] = []
    for path in (ROOT / "fixtures" / "queries.tsv", CROWDFLOWER / "queries.tsv"):
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()[1:]
            pool += [line.split("\t", 1)[1] for line in lines if "\t" in line]
    return list(dict.fromkeys(q.strip() for q in pool if q.strip()))


def zipf_mix(pool: list[str], n: int, s: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    order = pool[:]
    rng.shuffle(order)
    weights = [1.0 / (rank + 1) ** s for rank in range(len(order))]
    return rng.choices(order, weights=weights, k=n)


def ensure_index(catalogue: Path, data_dir: Path) -> None:
    from recsys.build import build_index
    from recsys.runtime import load_template, make_encoder
    from recsys.settings import Settings
    from recsys.store import IndexStore

    settings = Settings.from_env({}, data_dir=data_dir, torch_threads=2)
    store = IndexStore(settings.index_dir)
    if store.current() is not None and store.manifest(store.current() or "").get("source") == str(catalogue):
        return
    print(f"building the index of {catalogue} into {data_dir} ...", flush=True)
    result = build_index(
        catalogue, settings=settings, encoder=make_encoder(settings), template=load_template(settings)
    )
    manifest_path = result.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["source"] = str(catalogue)
    manifest_path.write_text(json.dumps(manifest, indent=2))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(data_dir),
        "RECSYS_TORCH_THREADS": "1",
        "RECSYS_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "recsys/api/gunicorn_conf.py", "recsys.api:create_app()"],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("gunicorn did not become ready")


def run_load(port: int, queries: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = [0]
    cached = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        hits = errs = 0
        i = n
        while time.monotonic() < stop_at:
            path = "/v1/search?" + urllib.parse.urlencode({"q": queries[i % len(queries)], "k": 10})
            i += concurrency
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 200:
                    errs += 1
                elif response.headers.get("X-Cache") == "hit":
                    hits += 1
            except (OSError, http.client.HTTPException):
                errs += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += errs
            cached[0] += hits

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors[0],
        "cache_hits": cached[0],
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "concurrency": concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=ROOT / "fixtures" / "catalogue.jsonl")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/recsys-bench"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()

    data_dir = args.data_dir / args.catalogue.stem
    ensure_index(args.catalogue, data_dir)
    pool = query_pool(args.catalogue)
    queries = zipf_mix(pool, 200_000, args.zipf, seed=13)
    scenarios = {"cached": {"RECSYS_REDIS_URL": args.redis_url}, "uncached": {"RECSYS_CACHE": "off"}}
    results: dict[str, Any] = {
        "catalogue": str(args.catalogue),
        "query_pool": len(pool),
        "zipf_s": args.zipf,
        "cpus": os.cpu_count(),
        "gunicorn": "2 gthread workers x 2 threads, 1 torch thread",
        "scenarios": {},
    }
    for name, extra in scenarios.items():
        if "RECSYS_REDIS_URL" in extra:
            import redis

            redis.Redis.from_url(extra["RECSYS_REDIS_URL"]).flushdb()
        port = free_port()
        proc = start_server(data_dir, port, extra)
        try:
            run_load(port, queries[::-1], 3, args.concurrency)  # warm-up: each worker loads its encoder
            results["scenarios"][name] = run_load(port, queries, args.seconds, args.concurrency)
            print(name, results["scenarios"][name], flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
