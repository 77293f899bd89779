"""Relevance and ANN benchmark on every set of ../shared/data that is present (absent ones are skipped).

* crowdflower and homedepot (judged queries): the four search modes (dense, lexical = BM25 ordering,
  hybrid, hybrid+intent = what serving does) on one index, so every figure is a ratio against the
  BM25 baseline measured in the same run; Annoy's recall@10 against exact search at its default
  search_k and at the tuned one; the served query path's time (understanding + hybrid search).
* myntra (no judgements): similar items, relevant when they share article type and gender (grade 1)
  and colour too (grade 2), over a seeded sample of 1,000 products.

The indexes are the evaluation indexes ``recsys eval`` builds (``$RECSYS_DATA_DIR/eval/<catalogue
hash>``), so a set already evaluated is not built again.

    python bench/relevance.py [--data ../shared/data] [--sets crowdflower homedepot myntra]
                              [--json bench/results/relevance.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.build.pipeline import build_index
from recsys.evaluation.commands import evaluate_search, evaluate_similar_items
from recsys.evaluation.evalindex import EvalIndex
from recsys.evaluation.metrics import read_qrels, read_queries
from recsys.evaluation.modes import LEXICAL, MODES
from recsys.factories import load_template, make_encoder
from recsys.index.ann import AnnoyBackend, annoy_top, exact_top
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings

SEARCH_SETS = ("crowdflower", "homedepot")
SIMILAR_SETS = {"myntra": (("category", "gender"), "colour")}  # set -> (same fields, grade-2 field)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=[*SEARCH_SETS, *SIMILAR_SETS])
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "relevance.json")
    args = parser.parse_args()
    settings = Settings.from_env()
    encoder = make_encoder(settings)
    template = load_template(settings)

    def build(path: Path, here: Settings) -> object:
        return build_index(path, settings=here, encoder=encoder, template=template)

    report: dict[str, Any] = {}
    for name in args.sets:
        folder = args.data / name
        if not (folder / "catalogue.jsonl").is_file():
            print(
                f"skipped {name}: {folder}/catalogue.jsonl is not here (shared evaluation data)",
                file=sys.stderr,
            )
            continue
        print(f"{name}: evaluating", file=sys.stderr)
        if name in SIMILAR_SETS:
            same, grade2 = SIMILAR_SETS[name]
            similar = evaluate_similar_items(
                folder / "catalogue.jsonl",
                settings=settings,
                encoder=encoder,
                template=template,
                build=build,
                same=same,
                grade2=grade2,
                sample=1000,
                seed=0,
            )
            report[name] = {
                **_index_facts(similar.index),
                "similar": {"same": ",".join(same), "grade2": grade2, **similar.scores.to_dict()},
            }
        else:
            report[name] = _search_set(folder, settings, encoder, template, build)
    if not report:
        print(f"no evaluation set under {args.data}: nothing measured", file=sys.stderr)
        return 0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(report))
    print(f"\nwrote {args.json}")
    return 0


def _search_set(
    folder: Path, settings: Settings, encoder: Encoder, template: Template, build: Any
) -> dict[str, Any]:
    result = evaluate_search(
        folder / "catalogue.jsonl",
        folder / "queries.tsv",
        folder / "qrels.tsv",
        settings=settings,
        encoder=encoder,
        template=template,
        build=build,
        modes=MODES,
    )
    out: dict[str, Any] = {**_index_facts(result.index), "coverage": result.coverage.message()}
    out["modes"] = {mode: scores.to_dict() for mode, scores in result.scores.items()}
    base = result.scores[LEXICAL].ndcg_at_10
    out["ndcg_vs_bm25"] = {mode: round(s.ndcg_at_10 / base, 4) for mode, s in result.scores.items()}

    engine = Engine(result.index.settings, encoder, template, result.index.store)
    queries = read_queries(folder / "queries.tsv")
    judged = read_qrels(folder / "qrels.tsv")
    texts = [text for qid, text in queries.items() if qid in judged]
    vectors = [engine.embed_query(text) for text in texts]
    space = engine.index.spaces["search"]
    backend = space.backend
    if isinstance(backend, AnnoyBackend):
        exact_vectors = np.asarray(space.vectors)
        trees = result.index.store.manifest(engine.index.version).trees
        for label, search_k in (("annoy_default", 10 * trees), ("annoy_tuned", backend.search_k)):
            hits = 0
            for vector in vectors:
                truth = set(exact_top(exact_vectors, vector, 10)[0].tolist())
                hits += len(truth & set(annoy_top(backend.annoy, vector, 10, search_k)[0].tolist()))
            out[f"{label}_recall@10"] = {"search_k": search_k, "recall": round(hits / (10 * len(vectors)), 4)}
    else:
        out["annoy"] = "the build chose exact search: no Annoy recall to measure"

    engine.search(texts[0])  # warm-up: loads the model
    timings = []
    for text in texts:
        started = time.perf_counter()
        engine.search(text, intent=engine.understand(text))
        timings.append((time.perf_counter() - started) * 1000)
    out["query_ms"] = {
        "path": "hybrid+intent (understanding, query embedding, hybrid retrieval)",
        "p50": round(statistics.median(timings), 2),
        "p99": round(float(np.percentile(timings, 99)), 2),
        "threads": os.environ.get("RECSYS_TORCH_THREADS", "default"),
    }
    return out


def _index_facts(index: EvalIndex) -> dict[str, Any]:
    version = index.store.current()
    assert version is not None
    manifest = index.store.manifest(version)
    size = sum(f.stat().st_size for f in index.store.path(version).rglob("*") if f.is_file())
    facts: dict[str, Any] = {
        "products": manifest.counts.products,
        "index_version": version,
        "index_bytes": size,
        "tuning": {name: tuning.model_dump() for name, tuning in manifest.tuning.items()},
    }
    if index.built:
        facts.update(build_seconds=manifest.build_seconds, embedded=manifest.counts.embedded)
    return facts


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| set | mode | nDCG@10 | Recall@100 | MRR@10 | nDCG@10 vs BM25 |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in report.items():
        for mode, scores in figures.get("modes", {}).items():
            ratio = figures["ndcg_vs_bm25"][mode]
            lines.append(
                f"| {name} | {mode} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | "
                f"{scores['mrr@10']:.4f} | {ratio:.3f} |"
            )
        for label in ("annoy_default", "annoy_tuned"):
            if f"{label}_recall@10" in figures:
                annoy = figures[f"{label}_recall@10"]
                lines.append(
                    f"| {name} | {label} recall@10 (search_k {annoy['search_k']}) | {annoy['recall']} | | | |"
                )
    similar = [(name, figures["similar"]) for name, figures in report.items() if "similar" in figures]
    if similar:
        lines += [
            "",
            "| set | similar items (same) | precision@10 | nDCG@10 | products |",
            "|---|---|---|---|---|",
        ]
        for name, scores in similar:
            lines.append(
                f"| {name} | {scores['same']} | {scores['precision@10']:.4f} | {scores['ndcg@10']:.4f} | "
                f"{scores['products']} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
