"""Load benchmark: gunicorn on loopback, a Zipf mix of storefront queries, cached and uncached.

    .venv/bin/python bench/load.py [--catalogue PATH] [--seconds 20] [--concurrency 2 4] [--generator wrk]

Builds (or reuses) an index under ``--data-dir`` (outside the repository) and starts the ``web``
process once per scenario: the baseline (no cache, queries encoded by torch), uncached_exact (no
cache, queries on ONNX Runtime with float32 weights), uncached (no cache, the default: int8 weights)
and cached (Redis). Each runs at every ``--concurrency`` for ``--seconds``;
the load comes from wrk when it is installed (``apt-get install wrk``), else from Python keep-alive
threads. Writes ``bench/results/load.json``. The generator shares the machine's CPUs with the server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
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
CROWDFLOWER = ROOT.parent / "shared" / "data" / "crowdflower"


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
    from recsys.build.pipeline import build_index
    from recsys.factories import load_template, make_encoder
    from recsys.index.store import IndexStore
    from recsys.settings import Settings

    settings = Settings.from_env({}, data_dir=data_dir, torch_threads=2)
    store = IndexStore(settings.index_dir)
    source = data_dir / "SOURCE"  # which catalogue the bench index was built from
    if store.current() is not None and source.is_file() and source.read_text() == str(catalogue):
        return
    print(f"building the index of {catalogue} into {data_dir} ...", flush=True)
    build_index(
        catalogue, settings=settings, encoder=make_encoder(settings), template=load_template(settings)
    )
    source.write_text(str(catalogue))


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


WRK_SCRIPT = """
local paths = {%s}
local i = 0
function setup(thread)
  thread:set("offset", math.floor(#paths / 2) * (thread_count or 0))
  thread_count = (thread_count or 0) + 1
end
function init(args)
  i = offset or 0
end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def run_wrk(port: int, queries: list[str], seconds: float, concurrency: int) -> dict[str, Any]:
    """wrk (C, epoll) as the load generator: it costs the server's CPUs far less than Python threads."""
    paths = ",".join(
        json.dumps("/v1/search?" + urllib.parse.urlencode({"q": q, "k": 10})) for q in queries[:20_000]
    )
    script = Path(f"/tmp/recsys-wrk-{os.getpid()}.lua")
    script.write_text(WRK_SCRIPT % paths)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, concurrency)),
                "-c",
                str(concurrency),
                "-d",
                f"{int(seconds)}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        script.unlink(missing_ok=True)

    def ms(label: str) -> float:
        value = next(line.split()[1] for line in out.splitlines() if line.strip().startswith(label))
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
        return round(float(value[: -len(unit)]) * scale[unit], 2)

    requests = int(next(line.split()[0] for line in out.splitlines() if "requests in" in line))
    bad = [line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    errors = sum(int(n) for line in bad for n in line.replace(",", " ").split() if n.isdigit())
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    return {
        "requests": requests,
        "errors": errors,
        "seconds": seconds,
        "rps": round(rps, 1),
        "p50_ms": ms("50%"),
        "p90_ms": ms("90%"),
        "p99_ms": ms("99%"),
        "concurrency": concurrency,
        "generator": "wrk",
        **({"error_lines": bad} if bad else {}),
    }


SCENARIOS: dict[str, dict[str, str]] = {
    # The baseline: nothing cached, queries encoded by torch (what a plain transformers server does).
    "uncached_torch": {"RECSYS_CACHE": "off", "RECSYS_QUERY_RUNTIME": "torch"},
    "uncached_exact": {"RECSYS_CACHE": "off", "RECSYS_QUERY_RUNTIME": "onnx"},
    "uncached": {"RECSYS_CACHE": "off"},  # the default query path: ONNX Runtime with int8 weights
    "cached": {},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=ROOT / "fixtures" / "catalogue.jsonl")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/recsys-bench"))
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()

    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    data_dir = args.data_dir / args.catalogue.stem
    ensure_index(args.catalogue, data_dir)
    pool = query_pool(args.catalogue)
    queries = zipf_mix(pool, 200_000, args.zipf, seed=13)
    results: dict[str, Any] = {
        "catalogue": str(args.catalogue),
        "query_pool": len(pool),
        "zipf_s": args.zipf,
        "cpus": os.cpu_count(),
        "generator": generator,
        "gunicorn": f"2 {os.environ.get('RECSYS_WEB_WORKER_CLASS', 'sync')} workers, 1 model thread each",
        "scenarios": {},
    }
    for name in args.scenarios:
        extra = SCENARIOS[name]
        if name == "cached":
            extra = {"RECSYS_REDIS_URL": args.redis_url}
            import redis

            redis.Redis.from_url(args.redis_url).flushdb()
        port = free_port()
        proc = start_server(data_dir, port, extra)
        try:
            run_load(port, queries[::-1], 3, 2)  # warm-up: each worker loads its encoder
            for concurrency in args.concurrency:
                run = run_wrk if generator == "wrk" else run_load
                figures = run(port, queries, args.seconds, concurrency)
                results["scenarios"][f"{name}@c{concurrency}"] = figures
                print(name, figures, flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    for concurrency in args.concurrency if "uncached_torch" in args.scenarios else []:
        base = results["scenarios"][f"uncached_torch@c{concurrency}"]["rps"]
        for name in set(args.scenarios) - {"uncached_torch"}:
            figures = results["scenarios"][f"{name}@c{concurrency}"]
            figures["rps_vs_uncached_torch"] = round(figures["rps"] / base, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
