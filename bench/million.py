"""The ANN step at up to a million products: build, memory, recall, latency, filters, compact storage.

    .venv/bin/python bench/million.py [--products 10000 100000 1000000] [--trees 32 64]

**Stand-in vectors, labelled so in every output.** Embedding a million texts takes hours on this
machine, so the real encoder (the served model and template) embeds the fixture catalogue's products,
and each of the N products is a mix of a real product vector and one of its 20 nearest neighbours, plus
noise: clustered the way a catalogue is, with near-variants. The queries are real: the fixture's
queries and shopper queries generated from its products' attributes, embedded with the query
instruction. ``--index`` takes the prototypes from a real catalogue's index instead (its stored vectors,
and the judged queries beside its catalogue).

For each size and tree count it measures, beside the baseline (one exact matrix product over the
memory-mapped float32 vectors, which is what a full scan costs):

* the Annoy build (adding the items, building the trees) and its file size;
* the ``search_k`` the build picks (``tune_search_k`` on the build's probes, as ``recsys index build``
  does) and a sweep around it: recall@10 against exact search (ties count) and p50/p99 of the ANN step
  for k=10, and of the backend call the engine makes for its candidate pool (n=100);
* filtered search through ``VectorSpace.top`` (the engine's path) at 0.1%, 1%, 10% and 100% selectivity,
  with random masks (a filter uncorrelated with the query: the hard case for over-fetching);
* float16 storage of the exact matrix: recall of an exact float16 scan and of float16 candidates
  re-scored in float32, and its time, against the float32 scan;
* memory: two fresh processes (as two gunicorn workers) each open the index (Annoy file and vectors,
  memory-mapped) and run the queries; their RSS and PSS (``/proc/self/smaps_rollup``) show what they
  share.

Writes bench/results/million.json (and prints a table). Everything heavy is kept under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys.catalogue import load_catalogue, price_bands  # noqa: E402
from recsys.finetune.queries import generate  # noqa: E402
from recsys.index.ann import (  # noqa: E402
    AnnoyBackend,
    annoy_top,
    build_annoy,
    exact_kth,
    exact_top,
    load_annoy,
    load_vectors,
    sample_queries,
    save_vectors,
    tied_hits,
    tune_search_k,
)
from recsys.index.loaded import VectorSpace  # noqa: E402

STAND_IN = (
    "stand-in vectors: mixes of two neighbouring real all-MiniLM-L6-v2 product vectors plus noise; "
    "real query vectors"
)
K = 10
POOL = 100  # the engine's candidate pool (recsys.query.retrieval.POOL)
SELECTIVITIES = (0.001, 0.01, 0.1, 1.0)
SWEEP = (0.25, 0.5, 1, 2, 4)  # multiples of the tuned search_k
NOISE = 0.02  # per dimension, on unit vectors of 384 dimensions (a mix moves about 0.2-0.4 off its parents)
RECALL_TARGET = 0.98  # the build's default (RECSYS_TARGET_RECALL)
TUNING_QUERIES = 200


def prototypes(work: Path, catalogue: Path, index: Path | None, queries_per: int = 200) -> dict[str, Any]:
    """Real vectors and real queries (cached in ``work``): with ``index`` (a version directory that
    ``recsys index build`` wrote), its stored search vectors and leaf categories, and the judged queries
    beside its catalogue; else the fixture catalogue's documents, its queries and generated ones."""
    cached = work / f"prototypes-{'fixture' if index is None else index.name}.npz"
    if cached.is_file():
        data = np.load(cached)
        return {name: data[name] for name in data.files}
    from recsys.build.texts import render
    from recsys.factories import load_template, make_encoder
    from recsys.settings import Settings

    settings = Settings()
    encoder, template = make_encoder(settings), load_template(settings)
    if index is not None:
        docs = np.load(index / "search.npy")
        texts = _queries(catalogue.parent / "queries.tsv")
    else:
        products = load_catalogue(catalogue).products
        docs = encoder.encode_documents(render(products, template).search)  # bf16 where the CPU has it
        rng = random.Random(0)
        picked = rng.sample(range(len(products)), min(queries_per, len(products)))
        texts = _queries(catalogue.parent / "queries.tsv")
        texts += [g.text for g in generate(products, price_bands(products), picked, rng)]
    queries = encoder.encode_queries([template.render_query(t) for t in texts])
    data = {"docs": docs.astype(np.float32), "queries": queries.astype(np.float32)}
    np.savez(cached, **data)
    return data


def _queries(path: Path) -> list[str]:
    return [line.split("\t")[1] for line in path.read_text(encoding="utf-8").splitlines()[1:] if "\t" in line]


def stand_in_vectors(n: int, docs: np.ndarray, seed: int = 0, near: int = 20) -> np.ndarray:
    """``n`` unit vectors: each a random mix of a prototype and one of its ``near`` nearest prototypes
    (a variant, a close competitor), plus noise."""
    rng = np.random.default_rng(seed)
    neighbours = np.empty((len(docs), near), dtype=np.int64)
    for start in range(0, len(docs), 2048):
        scores = docs[start : start + 2048] @ docs.T
        scores[np.arange(len(scores)), np.arange(start, start + len(scores))] = -np.inf  # not itself
        neighbours[start : start + 2048] = np.argpartition(-scores, near - 1, axis=1)[:, :near]
    out = np.empty((n, docs.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        first = rng.integers(len(docs), size=m)
        second = neighbours[first, rng.integers(near, size=m)]
        t = rng.uniform(0.0, 0.5, size=(m, 1)).astype(np.float32)
        mixed = (1 - t) * docs[first] + t * docs[second] + rng.normal(0, NOISE, (m, docs.shape[1]))
        out[start : start + m] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    return out


def timed(call: Any) -> tuple[Any, float]:
    """``call()``'s result and the seconds it took."""
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def percentiles(ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def recall(
    found: list[np.ndarray], vectors: np.ndarray, queries: np.ndarray, kth: np.ndarray, k: int = K
) -> float:
    """Share of the top-k slots holding a product at least as close as the exact k-th (ties count)."""
    hits = sum(
        tied_hits(vectors, rows[:k], q, floor) for rows, q, floor in zip(found, queries, kth, strict=True)
    )
    return round(hits / max(1, k * len(queries)), 4)


def per_query(call: Any, queries: np.ndarray) -> tuple[list[np.ndarray], dict[str, float]]:
    found, ms = [], []
    for q in queries:
        began = time.perf_counter()
        rows = call(q)
        ms.append((time.perf_counter() - began) * 1000)
        found.append(rows)
    return found, percentiles(ms)


def measure_trees(
    folder: Path, vectors: np.ndarray, queries: np.ndarray, kth: np.ndarray, trees: int
) -> dict[str, Any]:
    path = folder / f"search-{trees}.annoy"
    _, build_s = timed(lambda: build_annoy(vectors, path, trees))
    index = load_annoy(path, vectors.shape[1])
    tuned, tune_s = timed(
        lambda: tune_search_k(index, vectors, trees, RECALL_TARGET, sample_queries(vectors, TUNING_QUERIES))
    )
    row: dict[str, Any] = {
        "trees": trees,
        "build_s": round(build_s, 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
        "picked_search_k": tuned.search_k,
        "probe_recall": round(tuned.recall, 4),
        "tune_s": round(tune_s, 1),
        "sweep": [],
    }
    for factor in SWEEP if tuned.search_k > 0 else ():
        search_k = int(tuned.search_k * factor)
        found, ann = per_query(lambda q: annoy_top(index, q, K, search_k)[0], queries)  # noqa: B023
        backend = AnnoyBackend(index, vectors, search_k)
        _, pool = per_query(lambda q: backend.top(q, POOL)[0], queries)  # noqa: B023
        row["sweep"].append(
            {
                "search_k": search_k,
                "picked": factor == 1,
                "recall@10": recall(found, vectors, queries, kth),
                "ann_k10": ann,
                "engine_pool_n100": pool,
            }
        )
    row["_index"] = index
    return row


def measure_filters(
    vectors: np.ndarray, index: Any, search_k: int, queries: np.ndarray, seed: int = 1
) -> list[dict[str, Any]]:
    space = VectorSpace(vectors, AnnoyBackend(index, vectors, search_k))
    rng = np.random.default_rng(seed)
    out = []
    for share in SELECTIVITIES:
        mask = rng.random(len(vectors)) < share if share < 1 else np.ones(len(vectors), dtype=bool)
        mask[rng.integers(len(vectors))] = True  # never empty
        rows = np.flatnonzero(mask)
        truth = exact_kth(np.asarray(vectors[rows]), queries, min(K, len(rows)))
        found, times = per_query(lambda q: space.top(q, POOL, mask)[0], queries)  # noqa: B023
        outside = sum(int((~mask[f]).sum()) for f in found)
        out.append(
            {
                "selectivity": share,
                "matching": int(mask.sum()),
                "recall@10": recall(found, vectors, queries, truth, min(K, len(rows))),
                "rows_outside_filter": outside,
                **times,
            }
        )
    return out


def measure_float16(
    vectors: np.ndarray, queries: np.ndarray, kth: np.ndarray, count: int = 30
) -> dict[str, Any]:
    """On ``count`` queries: numpy has no fast float16 product, so a float16 scan is slow to measure."""
    half = np.asarray(vectors, dtype=np.float16)
    queries, kth = queries[:count], kth[:count]

    def rescored(q: np.ndarray) -> np.ndarray:
        rows = exact_top(half, q.astype(np.float16), 4 * K)[0]
        return exact_top(vectors, q, K, np.sort(rows))[0]

    found16, t16 = per_query(lambda q: exact_top(half, q.astype(np.float16), K)[0], queries)
    found_r, tr = per_query(rescored, queries)
    return {
        "float32_mb": round(vectors.nbytes / 2**20, 1),
        "float16_mb": round(half.nbytes / 2**20, 1),
        "float16_scan": {"recall@10": recall(found16, vectors, queries, kth), **t16},
        "float16_top40_rescored_float32": {"recall@10": recall(found_r, vectors, queries, kth), **tr},
    }


def probe_memory(folder: Path, trees: int, search_k: int, workers: int = 2) -> list[dict[str, Any]]:
    """``workers`` fresh processes open the same index and query it; then, all at once, read smaps."""
    argv = [sys.executable, __file__, "--worker", str(folder), str(trees), str(search_k)]
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    out = []
    for proc in procs:
        reply, _ = proc.communicate("go\n")
        out.append(json.loads(reply))
    return out


def worker(folder: Path, trees: int, search_k: int) -> None:
    vectors = load_vectors(folder / "search.npy")
    space = VectorSpace(
        vectors,
        AnnoyBackend(load_annoy(folder / f"search-{trees}.annoy", vectors.shape[1]), vectors, search_k),
    )
    queries = np.load(folder / "queries.npy")
    rng = np.random.default_rng(2)
    mask = rng.random(len(vectors)) < 0.01
    for q in queries:
        space.top(q, POOL)
        space.top(q, POOL, mask)
    print("ready", flush=True)
    sys.stdin.readline()
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) // 1024  # MB
    print(
        json.dumps(
            {
                "rss_mb": fields["Rss"],
                "pss_mb": fields["Pss"],
                "private_mb": fields["Private_Clean"] + fields["Private_Dirty"],
            }
        )
    )


def run_size(n: int, args: argparse.Namespace, real: dict[str, Any]) -> dict[str, Any]:
    folder = args.work / str(n)
    folder.mkdir(parents=True, exist_ok=True)
    vectors_path = folder / "search.npy"
    began = time.perf_counter()
    if not vectors_path.is_file():
        save_vectors(stand_in_vectors(n, real["docs"]), vectors_path)
    generate_s = time.perf_counter() - began
    vectors = load_vectors(vectors_path)
    queries = real["queries"]
    np.save(folder / "queries.npy", queries)
    kth = exact_kth(vectors, queries, K)  # also brings the memory-mapped vectors into the page cache
    _, scan = per_query(lambda q: exact_top(vectors, q, POOL)[0], queries[:50])
    result: dict[str, Any] = {
        "products": n,
        "vectors": STAND_IN,
        "generate_s": round(generate_s, 1),
        "baseline_exact_scan_n100": scan,
        "trees": [],
    }
    for trees in args.trees:
        row = measure_trees(folder, vectors, queries, kth, trees)
        index = row.pop("_index")
        if row["picked_search_k"] > 0:
            row["filters"] = measure_filters(vectors, index, row["picked_search_k"], queries)
            row["memory_two_workers"] = probe_memory(folder, trees, row["picked_search_k"])
        index.unload()
        result["trees"].append(row)
        _print_trees(n, row, scan)
    result["float16"] = measure_float16(vectors, queries, kth)
    print(f"  float16: {json.dumps(result['float16'])}")
    return result


def _print_trees(n: int, row: dict[str, Any], scan: dict[str, float]) -> None:
    print(
        f"{n:>9,} products, {row['trees']} trees: build {row['build_s']} s, {row['file_mb']} MB, "
        f"picked search_k {row['picked_search_k']} (probe recall {row['probe_recall']}); "
        f"exact scan p50 {scan['p50_ms']} ms"
    )
    print("  search_k | recall@10 | ANN k=10 p50/p99 ms | pool n=100 p50/p99 ms | speed-up vs scan (p50)")
    for s in row["sweep"]:
        mark = " <- picked" if s["picked"] else ""
        ann, pool = s["ann_k10"], s["engine_pool_n100"]
        print(
            f"  {s['search_k']:>8} | {s['recall@10']:.4f}    | {ann['p50_ms']:.2f} / {ann['p99_ms']:.2f}"
            f"         | {pool['p50_ms']:.2f} / {pool['p99_ms']:.2f}           | "
            f"{scan['p50_ms'] / ann['p50_ms']:.1f}x{mark}"
        )
    for f in row.get("filters", []):
        print(
            f"  filter {f['selectivity']:>6.1%}: {f['matching']:>9,} rows, recall@10 {f['recall@10']:.4f}, "
            f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, outside {f['rows_outside_filter']}"
        )
    for i, m in enumerate(row.get("memory_two_workers", [])):
        print(f"  worker {i}: RSS {m['rss_mb']} MB, PSS {m['pss_mb']} MB, private {m['private_mb']} MB")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--products", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--trees", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--catalogue", type=Path, default=ROOT / "fixtures" / "catalogue.jsonl")
    parser.add_argument(
        "--index",
        type=Path,
        help="prototypes from this index version of --catalogue (its stored vectors; queries.tsv beside it)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/recsys-million"))
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "million.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    real = prototypes(args.work, args.catalogue, args.index)
    report = {
        "machine": f"{os.cpu_count()} cores",
        "vectors": STAND_IN,
        "prototypes": f"{len(real['docs'])} products of {args.catalogue}",
        "queries": len(real["queries"]),
        "sizes": [run_size(n, args, real) for n in args.products],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
