"""Relevance and ANN benchmark on ../shared/data/crowdflower (skipped when the data is absent).

One index, one run: BM25 alone, dense alone and the hybrid fusion are scored on the same queries, so
every figure is a ratio against baselines measured here. It also measures the recall@10 of Annoy at
its default search_k and at the tuned one against exact search, and the time a query takes.

    python bench/relevance.py [--data ../shared/data/crowdflower] [--json bench/results/relevance.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from recsys.build.pipeline import build_index
from recsys.evaluation.metrics import evaluate, read_qrels, read_queries
from recsys.factories import load_template, make_encoder
from recsys.index.ann import AnnoyBackend, annoy_top, exact_top
from recsys.index.manifest import Identity
from recsys.index.store import IndexStore
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "crowdflower")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "relevance.json")
    args = parser.parse_args()
    if not (args.data / "catalogue.jsonl").is_file():
        print(f"skipped: {args.data}/catalogue.jsonl is not here (shared evaluation data)", file=sys.stderr)
        return 0
    base = Settings.from_env()
    settings = base.replace(
        data_dir=base.data_dir / "bench" / "crowdflower", embeddings_dir=base.resolved_embeddings_dir
    )
    encoder = make_encoder(settings)
    template = load_template(settings)
    store = IndexStore(settings.index_dir)
    current = store.current()
    built: dict = {}
    if current is None or store.manifest(current).identity != Identity.of(encoder, template):
        result = build_index(
            args.data / "catalogue.jsonl", settings=settings, encoder=encoder, template=template
        )
        built = {
            "build_seconds": result.manifest.build_seconds,
            "embedded": result.manifest.counts.embedded,
        }
        current = result.version
    manifest = store.manifest(current)
    size = sum(f.stat().st_size for f in store.path(current).rglob("*") if f.is_file())
    queries = read_queries(args.data / "queries.tsv")
    qrels = read_qrels(args.data / "qrels.tsv")

    report: dict = {
        "catalogue": str(args.data),
        "products": manifest.counts.products,
        "index_version": current,
        "index_bytes": size,
        "tuning": {name: tuning.model_dump() for name, tuning in manifest.tuning.items()},
        **built,
    }
    vectors = {q: Engine(settings, encoder, template, store).embed_query(text) for q, text in queries.items()}
    for name, weight in (("bm25", 1.0), ("dense", 0.0), ("hybrid", settings.hybrid_weight)):
        engine = Engine(settings.replace(hybrid_weight=weight), encoder, template, store)
        runs = {
            q: [r["id"] for r in engine.search(text, k=100, query_vector=vectors[q]).to_list()]
            for q, text in queries.items()
        }
        report[name] = evaluate(runs, qrels).to_dict()
    for name in ("dense", "hybrid"):
        report[f"{name}_vs_bm25_ndcg"] = round(report[name]["ndcg@10"] / report["bm25"]["ndcg@10"], 4)
    report["hybrid_vs_dense_ndcg"] = round(report["hybrid"]["ndcg@10"] / report["dense"]["ndcg@10"], 4)

    engine = Engine(settings, encoder, template, store)
    space = engine.index.spaces["search"]
    exact_vectors = np.asarray(space.vectors)
    backend = space.backend
    assert isinstance(backend, AnnoyBackend), "the build chose exact search: no Annoy recall to measure"
    for label, search_k in (("annoy_default", 10 * manifest.trees), ("annoy_tuned", backend.search_k)):
        hits = 0
        for vector in vectors.values():
            truth = set(exact_top(exact_vectors, vector, 10)[0].tolist())
            hits += len(truth & set(annoy_top(backend.annoy, vector, 10, search_k)[0].tolist()))
        report[f"{label}_recall@10"] = {"search_k": search_k, "recall": round(hits / (10 * len(vectors)), 4)}

    timings = []
    texts = list(queries.values())
    engine.search(texts[0])  # warm-up: loads the model
    for text in texts:
        started = time.perf_counter()
        engine.search(text)
        timings.append((time.perf_counter() - started) * 1000)
    report["query_ms"] = {
        "p50": round(statistics.median(timings), 2),
        "p99": round(float(np.percentile(timings, 99)), 2),
        "threads": os.environ.get("RECSYS_TORCH_THREADS", "default"),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
