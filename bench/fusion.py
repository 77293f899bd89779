"""How far can the fusion of the evidence we have go? A learned ranking over each query's candidates,
fitted to the judged queries themselves.

For every judged query of each set, the served hybrid's candidate pool (``Engine.pool``, 300 rows a
retriever) and 12 features a candidate: the cosine to the full text and to the short text; the
served lexical score; each BM25 part over its maximum (words, character 3-grams, title bigrams); BM25
of the title's words alone and of the description's alone (built here); the share of the query's
words in the title, and whether all are; the description's length; each cosine less the query's best.
The served fusion is one weighting of these (0.25, 0.25, 0.5 on the first three). From it, coordinate
ascent on mean nDCG@10 fits a linear weighting:

* **in-sample**: fitted to all of a set's queries and scored on them: an upper bound for any linear
  fusion of this evidence, since it is tuned to the very queries it is scored on;
* **5-fold**: fitted to four fifths, scored on the fifth left out (seeded folds);
* **across sets**: fitted to one set, scored on the other; fitted to all sets (in-sample, and on four
  fifths of each, scored on each fifth left out);
* **a title-coverage bonus**: the served fusion plus a share of the title-coverage feature alone.

nDCG@10 here is computed over the pool with the project's gains (grade minus the lowest grade, the
ideal from every judged product), as ``recsys eval`` does; the served row reproduces its figure.

    python bench/fusion.py [--data ../shared/data] [--sets crowdflower homedepot]
                           [--json bench/results/fusion.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from recsys.build.pipeline import build_index
from recsys.evaluation.evalindex import open_eval_index
from recsys.evaluation.metrics import Qrels, read_qrels, read_queries
from recsys.factories import load_template, make_encoder
from recsys.index.tokens import words
from recsys.model.templates import normalise_query
from recsys.query.engine import Engine
from recsys.settings import PROJECT_ROOT, Settings

FEATURES = (
    "cos_full",
    "cos_short",
    "lexical_served",
    "bm25_words",
    "bm25_trigrams",
    "bm25_title_bigrams",
    "bm25_title_words",
    "bm25_description_words",
    "title_coverage",
    "title_has_all",
    "description_length",
    "cos_full_below_best",
)
SERVED = dict(cos_full=0.25, cos_short=0.25, lexical_served=0.5)
POOL = 300
COVERAGE_BONUS = (0.05, 0.1, 0.2, 0.3)  # the served fusion plus this much of the title coverage
STEPS = (-0.2, -0.1, -0.05, -0.02, 0.02, 0.05, 0.1, 0.2)
DISCOUNT = 1.0 / np.log2(np.arange(2, 12))
Query = tuple[np.ndarray, np.ndarray, float]  # features (candidates x FEATURES), gains, ideal DCG@10


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=["crowdflower", "homedepot"])
    parser.add_argument("--json", type=Path, default=PROJECT_ROOT / "bench" / "results" / "fusion.json")
    args = parser.parse_args()
    settings = Settings.from_env()
    encoder = make_encoder(settings)
    template = load_template(settings)
    data: dict[str, list[Query]] = {}
    for name in args.sets:
        folder = args.data / name
        if not (folder / "qrels.tsv").is_file():
            print(f"skipped {name}: {folder}/qrels.tsv is not here (shared evaluation data)", file=sys.stderr)
            continue
        print(f"{name}: features", file=sys.stderr)
        data[name] = _features(folder, settings, encoder, template)
    if not data:
        print(f"no judged set under {args.data}: nothing measured", file=sys.stderr)
        return 0
    served = np.array([SERVED.get(f, 0.0) for f in FEATURES], dtype=np.float32)
    report: dict[str, Any] = {"features": FEATURES, "sets": {}}
    for name, queries in data.items():
        fitted = _ascent([queries], served)
        folds = _folds({name: queries}, served)[name]
        row: dict[str, Any] = {
            "queries": len(queries),
            "served": round(_ndcg(queries, served), 4),
            "in_sample": round(_ndcg(queries, fitted), 4),
            "in_sample_weights": {f: round(float(w), 3) for f, w in zip(FEATURES, fitted, strict=True)},
            "five_fold": round(folds, 4),
        }
        for other, theirs in data.items():
            if other != name:
                row[f"fitted_on_{other}"] = round(_ndcg(queries, _ascent([theirs], served)), 4)
        report["sets"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "in_sample_weights"}), file=sys.stderr)
    if len(data) > 1:
        both = _ascent(list(data.values()), served)
        report["fitted_on_all"] = {name: round(_ndcg(q, both), 4) for name, q in data.items()}
        report["fitted_on_all_five_fold"] = _folds(data, served)
    coverage = FEATURES.index("title_coverage")
    report["title_coverage_bonus"] = {}
    for bonus in COVERAGE_BONUS:
        weights = served.copy()
        weights[coverage] = bonus
        report["title_coverage_bonus"][str(bonus)] = {
            name: round(_ndcg(q, weights), 4) for name, q in data.items()
        }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def _features(folder: Path, settings: Settings, encoder: Any, template: Any) -> list[Query]:
    import bm25s

    def build(path: Path, here: Settings) -> object:
        return build_index(path, settings=here, encoder=encoder, template=template)

    index = open_eval_index(folder / "catalogue.jsonl", settings, encoder, template, build)
    engine = Engine(index.settings, encoder, template, index.store)
    by_id = {p.id: p for p in index.products}
    loaded = engine.index
    products = [by_id[str(row["id"])] for row in loaded.products]
    titles = [words(p.title) for p in products]
    extra = {}
    for feature, tokens in (
        ("bm25_title_words", titles),
        ("bm25_description_words", [words(p.description or "") for p in products]),
    ):
        if any(tokens):  # homedepot has no descriptions: the feature stays 0
            retriever = bm25s.BM25(k1=0.9, b=0.75, method="lucene")
            retriever.index(tokens, show_progress=False)
            extra[feature] = retriever
    length = np.log1p(np.array([len((p.description or "").split()) for p in products], dtype=np.float32))
    qrels: Qrels = read_qrels(folder / "qrels.tsv")
    grades = [g for judged in qrels.values() for g in judged.values()]
    low = min(grades)
    out: list[Query] = []
    for qid, text in read_queries(folder / "queries.tsv").items():
        judged = qrels.get(qid)
        if not judged:
            continue
        ideal = np.sort(np.array([g - low for g in judged.values()], dtype=np.float32))[::-1][:10]
        idcg = float((ideal * DISCOUNT[: len(ideal)]).sum())
        if idcg <= 0:
            continue
        pool = engine.pool(text, POOL)
        rows = pool.rows
        n = len(rows)
        parts = loaded.lexical.parts(normalise_query(text))
        terms = set(words(text))
        coverage = np.array(
            [len(terms & set(titles[r])) / len(terms) if terms else 0.0 for r in rows], dtype=np.float32
        )
        columns = {
            "cos_full": pool.scores.full,
            "cos_short": pool.scores.short,
            "lexical_served": pool.scores.lexical if pool.scores.lexical is not None else np.zeros(n),
            "bm25_words": parts["words"][rows] if "words" in parts else np.zeros(n),
            "bm25_trigrams": parts["trigrams"][rows] if "trigrams" in parts else np.zeros(n),
            "bm25_title_bigrams": parts["bigrams"][rows] if "bigrams" in parts else np.zeros(n),
            "title_coverage": coverage,
            "title_has_all": (coverage >= 1.0).astype(np.float32),
            "description_length": length[rows] / 5.0,
            "cos_full_below_best": pool.scores.full - pool.scores.full.max(),
        }
        for feature in ("bm25_title_words", "bm25_description_words"):
            retriever = extra.get(feature)
            vocab = retriever.vocab_dict if retriever is not None else {}
            ids = [vocab[t] for t in words(text) if t in vocab]
            scores = np.zeros(1, dtype=np.float32)
            if retriever is not None and ids:
                scores = np.asarray(retriever.get_scores_from_ids(ids), dtype=np.float32)
            top = float(scores.max())
            columns[feature] = scores[rows] / top if top > 0 else np.zeros(n)
        matrix = np.stack([np.asarray(columns[f], dtype=np.float32) for f in FEATURES], axis=1)
        ids_ = [str(loaded.products[int(r)]["id"]) for r in rows]
        gains = np.array([max(judged.get(p, low) - low, 0.0) for p in ids_], dtype=np.float32)
        out.append((matrix, gains, idcg))
    return out


def _ndcg(queries: list[Query], weights: np.ndarray) -> float:
    total = 0.0
    for matrix, gains, idcg in queries:
        scores = matrix @ weights
        top = np.argsort(-scores, kind="stable")[:10]
        total += float((gains[top] * DISCOUNT[: len(top)]).sum()) / idcg
    return total / len(queries)


def _ascent(sets: list[list[Query]], start: np.ndarray, rounds: int = 6) -> np.ndarray:
    """Coordinate ascent on the mean over ``sets`` of each set's mean nDCG@10."""

    def objective(weights: np.ndarray) -> float:
        return float(np.mean([_ndcg(queries, weights) for queries in sets]))

    weights, best = start.copy(), objective(start)
    for _ in range(rounds):
        improved = False
        for j in range(len(weights)):
            for step in STEPS:
                trial = weights.copy()
                trial[j] += step
                value = objective(trial)
                if value > best + 1e-5:
                    weights, best, improved = trial, value, True
        if not improved:
            break
    return weights


def _folds(data: dict[str, list[Query]], start: np.ndarray, k: int = 5, seed: int = 0) -> dict[str, float]:
    """Fitted to four fifths of every set of ``data`` at once (one set: the plain five folds), scored on
    each set's fifth left out."""
    rng = np.random.default_rng(seed)
    orders = {name: rng.permutation(len(queries)) for name, queries in data.items()}
    splits = {name: np.array_split(order, k) for name, order in orders.items()}
    totals = dict.fromkeys(data, 0.0)
    for fold in range(k):
        held = {name: set(splits[name][fold].tolist()) for name in data}
        train = [[q for i, q in enumerate(data[name]) if i not in held[name]] for name in data]
        fitted = _ascent(train, start)
        for name, queries in data.items():
            totals[name] += _ndcg([queries[i] for i in splits[name][fold]], fitted) * len(held[name])
    return {name: round(totals[name] / len(queries), 4) for name, queries in data.items()}


if __name__ == "__main__":
    raise SystemExit(main())
