"""The baselines, measured: plain BM25 (bm25s defaults, English stopwords and stemmer, over title and
description) and the peer, txtai's hybrid search (its BM25 plus dense cosine, same model, exact vectors over
each product's title and description, queries as typed) on every judged set of ../shared/data, scored
with recsys's own metrics, beside recsys's served mode on the same set from ``bench/relevance.py``'s
JSON (run that first: its figures are read, not recomputed).

txtai is not a dependency of recsys; install it beside it for this benchmark only (``pip install txtai
faiss-cpu``). Without it only plain BM25 is measured; without the data, nothing.

    python bench/peer.py [--data ../shared/data] [--sets crowdflower homedepot]
                         [--ours bench/results/relevance.json] [--json bench/results/peer.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from recsys.catalogue import load_catalogue
from recsys.evaluation.metrics import evaluate, read_qrels, read_queries
from recsys.evaluation.modes import DEFAULT_MODE
from recsys.settings import PROJECT_ROOT, Settings

SETS = ("crowdflower", "homedepot")
OURS = DEFAULT_MODE  # what serving does
BASELINES = ("bm25", "txtai_hybrid")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--ours", type=Path, default=PROJECT_ROOT / "bench" / "results" / "relevance.json")
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "peer.json")
    args = parser.parse_args()
    try:
        from txtai import Embeddings
    except ImportError:
        Embeddings = None
        print("txtai is not installed (pip install txtai faiss-cpu): plain BM25 only", file=sys.stderr)
    ours = json.loads(args.ours.read_text()) if args.ours.is_file() else {}
    model = str(Settings.from_env().resolved_model_dir)
    report: dict[str, Any] = {}
    for name in args.sets:
        folder = args.data / name
        if not (folder / "qrels.tsv").is_file():
            print(f"skipped {name}: {folder}/qrels.tsv is not here (shared evaluation data)", file=sys.stderr)
            continue
        products = load_catalogue(folder / "catalogue.jsonl").products
        queries = read_queries(folder / "queries.tsv")
        qrels = read_qrels(folder / "qrels.tsv")
        asked = {qid: text for qid, text in queries.items() if qid in qrels}
        texts = [f"{p.title} {p.description or ''}".strip() for p in products]
        mine = ours.get(name, {}).get("modes", {}).get(OURS)
        row: dict[str, Any] = {"products": len(products), "queries": len(asked), f"recsys_{OURS}": mine}
        row["bm25"] = _bm25(products, texts, asked, qrels)
        if Embeddings is not None:
            embeddings = Embeddings(path=model, hybrid=True, content=False)
            started = time.perf_counter()
            embeddings.index((p.id, text, None) for p, text in zip(products, texts, strict=True))
            row["txtai_index_s"] = round(time.perf_counter() - started, 1)
            runs = {q: [str(uid) for uid, _ in embeddings.search(text, 100)] for q, text in asked.items()}
            row["txtai_hybrid"] = evaluate(runs, qrels).to_dict()
        best = max(row[b]["ndcg@10"] for b in BASELINES if b in row)
        row["best_baseline_ndcg@10"] = best
        row["ndcg_ratio"] = round(mine["ndcg@10"] / best, 4) if mine else None
        report[name] = row
        print(f"{name}: {json.dumps(report[name])}", file=sys.stderr)
    if not report:
        return 0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print("| set | BM25 | txtai hybrid | recsys | recsys vs best baseline |\n|---|---|---|---|---|")
    for name, row in report.items():
        cells = [row[b]["ndcg@10"] if b in row else float("nan") for b in BASELINES]
        mine = row[f"recsys_{OURS}"]
        cells.append(mine["ndcg@10"] if mine else float("nan"))
        print(f"| {name} | " + " | ".join(f"{c:.4f}" for c in cells) + f" | {row['ndcg_ratio']} |")
    print(f"\nwrote {args.json}")
    return 0


def _bm25(products: list[Any], texts: list[str], asked: dict[str, str], qrels: Any) -> dict[str, Any]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    tokens = bm25s.tokenize(list(asked.values()), stopwords="en", stemmer=stemmer, show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=100, show_progress=False)
    runs = {
        qid: [products[j].id for j, score in zip(docs[i], scores[i], strict=True) if score > 0]
        for i, qid in enumerate(asked)
    }
    return evaluate(runs, qrels).to_dict()


if __name__ == "__main__":
    raise SystemExit(main())
