"""Benchmark: full versus incremental (5% changed) sharded reindex with 1 and 2 Celery worker processes.

Reads a subset of ../shared/data/myntra/catalogue.jsonl (never copied into the repo), runs a real
worker (prefork, -c N) on a Redis broker, prints a table and writes bench/results/reindex.json.

    .venv/bin/python bench/reindex.py --products 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys.build.jobs import JobRecord, make_control  # noqa: E402
from recsys.build.pipeline import job_status  # noqa: E402
from recsys.build.runner import start_reindex  # noqa: E402
from recsys.settings import Settings  # noqa: E402
from workers.local import WorkerProcess, wait_for  # noqa: E402
from workers.runner import CeleryRunner  # noqa: E402

SOURCE = ROOT.parent / "shared" / "data" / "myntra" / "catalogue.jsonl"
BROKER = "redis://127.0.0.1:6379/7"


def run(settings: Settings, catalogue: Path, worker: WorkerProcess) -> dict:
    started = time.perf_counter()
    control = make_control(settings)
    job = start_reindex(settings, control, CeleryRunner.from_settings(settings), catalogue)["task_id"]
    status = wait_for(
        lambda: (s := job_status(control, job)).finished and s,
        f"job {job}",
        worker,
        deadline_s=3600,
        every_s=0.2,
    )
    assert isinstance(status, JobRecord) and status.status == "succeeded", status
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "embedded": status.embedded,
        "shards": status.shards_total,
        "products": status.products,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not SOURCE.is_file():
        print(f"skipped: {SOURCE} is absent")
        return 0
    import redis

    client = redis.Redis.from_url(BROKER)
    rows = []
    with tempfile.TemporaryDirectory(prefix="recsys-bench-") as tmp:
        base = Path(tmp)
        lines = SOURCE.read_text(encoding="utf-8").splitlines()[: args.products]
        full = base / "catalogue.jsonl"
        full.write_text("\n".join(lines) + "\n", encoding="utf-8")
        changed_rows = [json.loads(line) for line in lines]
        for row in changed_rows[::20]:
            row["title"] = f"{row['title']} (bench edition)"
        changed = base / "changed.jsonl"
        changed.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in changed_rows), encoding="utf-8"
        )
        for n in args.workers:
            client.flushdb()
            data = base / f"w{n}"
            settings = Settings.from_env(
                {},
                data_dir=data,
                broker_url=BROKER,
                shard_size=args.shard_size,
                torch_threads=1,
            )
            worker = WorkerProcess(settings, base / f"worker-{n}.log", concurrency=n)
            try:
                for kind, catalogue in (("full", full), ("unchanged", full), ("5% changed", changed)):
                    result = run(settings, catalogue, worker)
                    rows.append({"workers": n, "kind": kind, **result})
                    print(
                        f"{n} worker(s)  {kind:<11} {result['seconds']:>8.2f}s  "
                        f"{result['embedded']:>6} texts embedded  {result['shards']} shards",
                        flush=True,
                    )
            finally:
                worker.stop()
        client.flushdb()
    for row in rows:  # every figure as a ratio against the full build with one worker, same run
        base = next(r for r in rows if r["workers"] == args.workers[0] and r["kind"] == "full")
        row["vs_full_1_worker"] = round(row["seconds"] / base["seconds"], 3)
    out = ROOT / "bench" / "results" / "reindex.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"products": args.products, "shard_size": args.shard_size, "torch_threads": 1, "runs": rows},
            indent=2,
        )
    )
    print(f"\n{'workers':>7}  {'kind':<11} {'seconds':>8}  {'embedded':>8}")
    for row in rows:
        print(f"{row['workers']:>7}  {row['kind']:<11} {row['seconds']:>8.2f}  {row['embedded']:>8}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
