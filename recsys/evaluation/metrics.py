"""Offline relevance evaluation the way the field does it, with ranx computing the metrics.

- nDCG@10 with gain = grade − lowest grade (so the lowest grade is worth nothing);
- Recall@100 where relevant = the top third of the grade range (grade ≥ max − (max − min)/3);
- MRR@10 of the first product with the top grade.

Exactly the queries that were asked (the keys of the runs) are scored: judged queries that were not
asked are left out, and asked queries without a judgement are excluded (:func:`coverage` counts
both, for the caller to report). The grade scale is read from the whole qrels file. Each metric is
averaged over the scored queries that have at least one relevant product under its own definition
(trec_eval's convention). Unjudged products count as not relevant.

Where judgements are sparse (judged from another engine's results, or from a click log), unjudged
products in the top 10 hold every figure down whatever they are; two figures say how much:
Judged@10, the share of each scored query's top 10 that has a judgement (as ir_measures defines it),
and nDCG@10 of the condensed ranking, the same ranking with its unjudged products taken out
(Sakai's condensed lists): the score the judged products alone earn.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recsys.errors import CatalogueError

Ranking = list[str]
Qrels = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Scores:
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    queries: int  # asked queries with a judgement
    judged_at_10: float = 0.0  # the share of the top 10 that has a judgement (those queries' mean)
    ndcg_at_10_condensed: float = 0.0  # nDCG@10 with the unjudged products taken out of each ranking
    # nDCG@10 of each query that has a product with a gain (the report's distribution and worst queries)
    ndcg_per_query: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "ndcg@10": round(self.ndcg_at_10, 4),
            "recall@100": round(self.recall_at_100, 4),
            "mrr@10": round(self.mrr_at_10, 4),
            "judged@10": round(self.judged_at_10, 4),
            "ndcg@10_condensed": round(self.ndcg_at_10_condensed, 4),
            "queries": self.queries,
        }


@dataclass(frozen=True)
class Coverage:
    """How the asked queries and the judged ones overlap."""

    asked: int
    scored: int  # asked and judged
    unasked: int  # judged, not asked: left out
    unjudged: int  # asked, not judged: excluded from the averages

    def message(self) -> str:
        return (
            f"scored {self.scored} of {self.asked} asked queries; {self.unjudged} asked queries have no "
            f"judgement (excluded); {self.unasked} judged queries were not asked (left out)"
        )


def coverage(asked: Iterable[str], qrels: Qrels) -> Coverage:
    asked = set(asked)
    scored = len(asked & qrels.keys())
    return Coverage(len(asked), scored, len(qrels) - scored, len(asked) - scored)


def read_queries(path: Path) -> dict[str, str]:
    rows = _read_tsv(path, ("query_id", "query"))
    return {row["query_id"]: row["query"] for row in rows}


def read_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    for number, row in enumerate(_read_tsv(path, ("query_id", "product_id", "grade")), start=2):
        try:
            grade = float(row["grade"])
        except ValueError:
            raise CatalogueError(f"{path} line {number}: grade {row['grade']!r} is not a number") from None
        qrels.setdefault(row["query_id"], {})[row["product_id"]] = grade
    return qrels


GAIN_SCALE = 1000  # nDCG is a ratio of gains: a common scale changes nothing but integer rounding
GRADE_PRECISION = 0.005


def evaluate(runs: Mapping[str, Ranking], qrels: Qrels) -> Scores:
    """Score ranked product ids per query against graded judgements: exactly the queries of ``runs``
    (an asked query that found nothing is ``[]``); those without a judgement are excluded. A metric
    no scored query has a relevant product for is 0.0."""
    from ranx import Qrels as RanxQrels
    from ranx import Run as RanxRun
    from ranx import evaluate as ranx_evaluate

    grades = [g for judged in qrels.values() for g in judged.values()]
    if not grades:
        raise CatalogueError("the qrels hold no judgement")
    low, high = min(grades), max(grades)
    if low == high:  # one grade only: every judged product is relevant
        low = high - 1
    # the top third of the range; grades are written with two decimals (2.33 for 7/3), so within 0.005
    threshold = high - (high - low) / 3 - GRADE_PRECISION
    asked = {q: judged for q, judged in qrels.items() if q in runs}

    def binarised(keep: Callable[[float], float]) -> dict[str, dict[str, float]]:
        picked = {q: {p: keep(g) for p, g in judged.items() if keep(g) > 0} for q, judged in asked.items()}
        return {q: judged for q, judged in picked.items() if judged}

    def as_run(rankings: Mapping[str, Ranking]) -> dict[str, dict[str, float]]:
        # Rank-derived scores keep the given order exactly (no tie-breaking by id inside ranx).
        return {
            q: {p: float(len(r) - i) for i, p in enumerate(r)} or {"__none__": 0.0}  # found nothing
            for q, r in rankings.items()
        }

    run_dict = as_run({q: runs[q] for q in asked})
    condensed = as_run({q: [p for p in runs[q] if p in judged] for q, judged in asked.items()})
    # ranx keeps relevance as integers: gains are scaled first, so 2.67 - 1 is not truncated to 1
    gains = binarised(lambda g: round((g - low) * GAIN_SCALE))
    results: dict[str, float] = {}
    per_query: dict[str, float] = {}
    for name, metric, judged, ranked in (
        ("ndcg@10", "ndcg@10", gains, run_dict),
        ("recall@100", "recall@100", binarised(lambda g: 1.0 if g >= threshold else 0.0), run_dict),
        ("mrr@10", "mrr@10", binarised(lambda g: 1.0 if g >= high else 0.0), run_dict),
        ("ndcg@10_condensed", "ndcg@10", gains, condensed),
    ):
        if not judged:  # no scored query has a relevant product under this metric
            results[name] = 0.0
            continue
        run = RanxRun({q: ranked[q] for q in judged})
        with warnings.catch_warnings():
            # numba warns while it compiles ranx's kernels (first use only): noise, not a problem.
            warnings.filterwarnings("ignore", message="unsafe cast")
            results[name] = float(ranx_evaluate(RanxQrels(judged), run, metric, make_comparable=True))
        if name == "ndcg@10":
            per_query = {str(q): float(v) for q, v in run.scores[metric].items()}
    shares = [sum(p in asked[q] for p in runs[q][:10]) / 10 for q in gains]  # nDCG@10's queries
    judged_at_10 = sum(shares) / len(shares) if shares else 0.0
    return Scores(
        results["ndcg@10"],
        results["recall@100"],
        results["mrr@10"],
        len(run_dict),
        judged_at_10,
        results["ndcg@10_condensed"],
        ndcg_per_query=per_query,
    )


def _read_tsv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    if not Path(path).is_file():
        raise CatalogueError(f"file not found: {path}")
    with Path(path).open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in columns if c not in (reader.fieldnames or ())]
        if missing:
            raise CatalogueError(
                f"{path}: header must name {', '.join(columns)}; missing {', '.join(missing)}"
            )
        return [{c: (row[c] or "").strip() for c in columns} for row in reader]
