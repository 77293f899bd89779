"""Soak: gunicorn under steady load for minutes while the index is republished, products are upserted
and Redis is stopped and started again.

    .venv/bin/python bench/soak.py [--minutes 10] [--load 0.8] [--publish-every 120] [--upsert-every 10]

First measures the uncached capacity (requests/s with the cache off, closed loop, 2 clients), then
sends the Zipf storefront mix open-loop at ``--load`` of it to a server with a Redis cache, while:
a new version is built and published every ``--publish-every`` seconds (in this process, as a reindex
would), an upsert batch arrives every ``--upsert-every`` seconds (PUT /v1/products), and halfway
through the private Redis is stopped for ``--redis-down`` seconds and started again. Reports, per
minute: requests, failures (anything but a 200, or no answer), p50/p99 latency, the readiness seen
and each gunicorn worker's resident memory. Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
from load import ROOT, ensure_index, free_port, query_pool, run_load, start_server, zipf_mix

TOKEN = "soak-token"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def workers_of(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return sorted(int(pid) for pid in out.split())


def start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    for _ in range(200):
        try:
            redis.Redis(port=port, socket_timeout=1).ping()
            return proc
        except redis.RedisError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 10) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--load", type=float, default=0.8, help="share of the uncached capacity to send")
    parser.add_argument("--publish-every", type=float, default=120)
    parser.add_argument("--upsert-every", type=float, default=10)
    parser.add_argument("--redis-down", type=float, default=20)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/recsys-bench"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak.json")
    args = parser.parse_args()

    from recsys.build.pipeline import build_index
    from recsys.factories import load_template, make_encoder
    from recsys.settings import Settings

    catalogue = ROOT / "fixtures" / "catalogue.jsonl"
    data_dir = args.data_dir / "soak"
    ensure_index(catalogue, data_dir)
    queries = zipf_mix(query_pool(catalogue), 200_000, 1.1, seed=17)

    port = free_port()
    server = start_server(data_dir, port, {"RECSYS_CACHE": "off"})
    try:
        run_load(port, queries[::-1], 3, 2)
        capacity = run_load(port, queries, 20, 2)["rps"]
    finally:
        server.terminate()
        server.wait(30)
    rate = args.load * capacity
    print(
        f"uncached capacity {capacity} req/s; soaking at {rate:.0f} req/s for {args.minutes} min", flush=True
    )

    folder = Path(tempfile.mkdtemp(prefix="recsys-soak-redis-"))
    redis_port = free_port()
    redis = start_redis(redis_port, folder)
    port = free_port()
    extra = {"RECSYS_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "RECSYS_ADMIN_TOKEN": TOKEN}
    server = start_server(data_dir, port, extra)
    settings = Settings.from_env({}, data_dir=data_dir, torch_threads=1)
    encoder, template = make_encoder(settings), load_template(settings)

    samples: queue.Queue[tuple[float, float, int]] = queue.Queue()  # (at, seconds, status)
    events: list[dict[str, Any]] = []
    stop = threading.Event()
    duration = args.minutes * 60
    started = time.monotonic()

    def client(offset: int, clients: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i, due = offset, started + offset / rate
        while not stop.is_set():
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            path = "/v1/search?" + urllib.parse.urlencode({"q": queries[i % len(queries)], "k": 10})
            sent = time.monotonic()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            samples.put((sent - started, time.monotonic() - sent, status))
            i += clients
            due += clients / rate

    def chores() -> None:
        next_publish, next_upsert, redis_down_at = args.publish_every, args.upsert_every, duration / 2
        n = 0
        nonlocal redis
        while not stop.is_set():
            at = time.monotonic() - started
            if at >= next_upsert:
                products = [
                    {"id": f"soak-{n}-{j}", "title": f"Soak lamp {n}-{j}", "price": 10.0 + j}
                    for j in range(20)
                ]
                status = request(port, "PUT", "/v1/products", json.dumps({"products": products}).encode(), 60)
                events.append({"at": round(at, 1), "event": "upsert", "status": status})
                next_upsert += args.upsert_every
                n += 1
            if at >= next_publish:
                result = build_index(catalogue, settings=settings, encoder=encoder, template=template)
                events.append({"at": round(at, 1), "event": "publish", "version": result.version})
                next_publish += args.publish_every
            if redis_down_at is not None and at >= redis_down_at:
                redis.terminate()
                redis.wait(10)
                events.append({"at": round(at, 1), "event": "redis stopped"})
                time.sleep(args.redis_down)
                readyz = ready(port)
                redis = start_redis(redis_port, folder)
                events.append(
                    {
                        "at": round(time.monotonic() - started, 1),
                        "event": "redis started",
                        "readyz_while_down": readyz,
                    }
                )
                time.sleep(6)  # the cache's circuit breaker closes within 5 s
                events.append(
                    {
                        "at": round(time.monotonic() - started, 1),
                        "event": "readyz after",
                        "readyz": ready(port),
                    }
                )
                redis_down_at = None
            time.sleep(0.2)

    memory: list[dict[str, Any]] = []
    try:
        threads = [threading.Thread(target=client, args=(k, 4), daemon=True) for k in range(4)]
        threads.append(threading.Thread(target=chores, daemon=True))
        for thread in threads:
            thread.start()
        while time.monotonic() - started < duration:
            time.sleep(min(10.0, duration - (time.monotonic() - started)))
            memory.append(
                {
                    "at": round(time.monotonic() - started),
                    **{str(pid): round(rss_mb(pid), 1) for pid in workers_of(server.pid)},
                }
            )
        stop.set()
        for thread in threads:
            thread.join(60)
    finally:
        server.terminate()
        server.wait(30)
        redis.terminate()

    rows = []
    got = [samples.get() for _ in range(samples.qsize())]
    for minute in range(int(np.ceil(duration / 60))):
        inside = [(s, c) for at, s, c in got if minute * 60 <= at < (minute + 1) * 60]
        if not inside:
            continue
        ms = np.array([s for s, _ in inside]) * 1000
        rows.append(
            {
                "minute": minute + 1,
                "requests": len(inside),
                "failed": sum(c != 200 for _, c in inside),
                "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p99_ms": round(float(np.percentile(ms, 99)), 2),
            }
        )

    def growth_from(first: dict[str, Any], last: dict[str, Any]) -> dict[str, float]:
        return {
            pid: round((last[pid] - first[pid]) / first[pid] * 100, 1)
            for pid in first
            if pid != "at" and pid in last
        }

    # The first minute is the warm-up: the workers touch the index's pages and their allocator arenas
    # fill (measured: 530 -> 600 MB in the first 40 s, then flat). A leak shows as growth after it.
    warm = next((m for m in memory if m["at"] >= 60), memory[0])
    growth = growth_from(warm, memory[-1])
    growth_with_warmup = growth_from(memory[0], memory[-1])
    report = {
        "uncached_capacity_rps": capacity,
        "rate_rps": round(rate, 1),
        "minutes": args.minutes,
        "requests": len(got),
        "failed": sum(c != 200 for _, _, c in got),
        "per_minute": rows,
        "rss_mb": memory,
        "rss_growth_percent": growth,  # from the end of the first minute
        "rss_growth_percent_from_start": growth_with_warmup,
        "events": events,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'minute':>6} {'requests':>9} {'failed':>7} {'p50 ms':>7} {'p99 ms':>7}")
    for row in rows:
        cells = (row["minute"], row["requests"], row["failed"], row["p50_ms"], row["p99_ms"])
        print("{:>6} {:>9} {:>7} {:>7} {:>7}".format(*cells))
    print(
        f"failed {report['failed']} of {report['requests']}; RSS growth per worker after the first "
        f"minute, %: {growth} (from the start: {growth_with_warmup})"
    )
    print(f"events: {events}")
    ok = report["failed"] == 0 and all(g < 10 for g in growth.values())
    return 0 if ok else 1


def ready(port: int) -> str:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/readyz")
        return str(json.loads(conn.getresponse().read())["status"])
    except (OSError, ValueError, KeyError):
        return "no answer"


if __name__ == "__main__":
    sys.exit(main())
