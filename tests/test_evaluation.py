"""The evaluation command's metrics, checked against values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from recsys.errors import CatalogueError
from recsys.evaluation.metrics import coverage, evaluate, read_qrels, read_queries


def test_metrics_match_hand_computed_values() -> None:
    # Grades 1..4: gain = grade - 1; relevant for recall = grade >= 3; MRR target = grade 4.
    qrels = {
        "q1": {"a": 4, "b": 3, "c": 1, "d": 2},
        "q2": {"x": 3, "y": 1},
        "q3": {"z": 1},  # nothing relevant under any metric: excluded from every mean
    }
    runs = {"q1": ["c", "b", "a", "e"], "q2": ["y", "w"], "q3": ["z"]}
    scores = evaluate(runs, qrels)
    # q1: gains in ranked order 0, 2, 3, 0; ideal 3, 2, 1.
    dcg1 = 2 / math.log2(3) + 3 / math.log2(4)
    idcg1 = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4)
    # q2: x (gain 2) is not retrieved.
    assert scores.ndcg_at_10 == pytest.approx((dcg1 / idcg1 + 0.0) / 2, abs=1e-6)
    # recall@100: q1 finds a and b of {a, b}; q2 finds nothing of {x}.
    assert scores.recall_at_100 == pytest.approx((1.0 + 0.0) / 2)
    # MRR@10: only q1 has a grade-4 product, first at rank 3.
    assert scores.mrr_at_10 == pytest.approx(1 / 3)


def test_unjudged_products_are_counted_and_taken_out_of_the_condensed_ranking() -> None:
    # "e" and "f" have no judgement: they cost q1 its first place; the condensed ranking drops them.
    qrels = {"q1": {"a": 4, "b": 1}, "q2": {"x": 2, "y": 1}}
    runs = {"q1": ["e", "a", "f", "b"], "q2": ["x", "y"]}
    scores = evaluate(runs, qrels)
    assert scores.ndcg_at_10 == pytest.approx((1 / math.log2(3) + 1.0) / 2, abs=1e-6)
    assert scores.ndcg_at_10_condensed == pytest.approx(1.0)
    assert scores.judged_at_10 == pytest.approx((2 / 10 + 2 / 10) / 2)
    assert scores.to_dict()["judged@10"] == 0.2


def test_perfect_ranking_scores_one() -> None:
    qrels = {"q": {"a": 4, "b": 3, "c": 2}}
    scores = evaluate({"q": ["a", "b", "c"]}, qrels)
    assert (scores.ndcg_at_10, scores.recall_at_100, scores.mrr_at_10) == pytest.approx((1.0, 1.0, 1.0))


def test_a_query_with_no_results_counts_as_zero() -> None:
    scores = evaluate({"q": []}, {"q": {"a": 4, "b": 1}})
    assert (scores.ndcg_at_10, scores.recall_at_100, scores.mrr_at_10) == (0.0, 0.0, 0.0)
    assert scores.queries == 1 and scores.ndcg_per_query == {"q": 0.0}


def test_exactly_the_asked_queries_are_scored() -> None:
    """A qrels file that also judges queries nobody asked must not average them in as zeros."""
    qrels = {
        "asked": {"a": 4, "b": 1},
        "other1": {"x": 4},  # judged, not asked: left out (it used to count as a zero)
        "other2": {"y": 3, "z": 1},
    }
    runs = {"asked": ["b", "a"], "unjudged": ["a"]}  # "unjudged": asked, no judgement: excluded
    scores = evaluate(runs, qrels)
    ndcg = (3 / math.log2(3)) / 3  # gain 3 at rank 2, ideal 3 at rank 1
    assert scores.ndcg_at_10 == pytest.approx(ndcg)
    assert scores.recall_at_100 == pytest.approx(1.0)
    assert scores.mrr_at_10 == pytest.approx(0.5)
    assert scores.queries == 1 and set(scores.ndcg_per_query) == {"asked"}
    # the grade scale is the whole file's, whichever queries are asked
    assert evaluate({"other2": ["y"]}, qrels).mrr_at_10 == 0.0  # 3 is not the top grade (4)
    assert evaluate({"other2": ["y"]}, qrels).recall_at_100 == pytest.approx(1.0)  # 3 >= 4 - 3/3

    covered = coverage(runs, qrels)
    assert (covered.asked, covered.scored, covered.unasked, covered.unjudged) == (2, 1, 2, 1)
    assert "1 asked queries have no judgement" in covered.message()
    assert "2 judged queries were not asked" in covered.message()


def test_per_query_ndcg_matches_the_mean() -> None:
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 2, "d": 0}, "q3": {"e": 0}}
    scores = evaluate({"q1": ["b", "a"], "q2": ["c"], "q3": ["e"]}, qrels)
    assert set(scores.ndcg_per_query) == {"q1", "q2"}  # q3 has no product with a gain
    assert scores.ndcg_per_query["q2"] == pytest.approx(1.0)
    assert scores.ndcg_at_10 == pytest.approx(sum(scores.ndcg_per_query.values()) / 2)


def test_a_single_grade_means_every_judged_product_is_relevant() -> None:
    scores = evaluate({"q": ["x", "a"]}, {"q": {"a": 1}})
    assert scores.mrr_at_10 == pytest.approx(0.5)
    assert scores.recall_at_100 == pytest.approx(1.0)


def test_reading_tsv_files(tmp_path: Path) -> None:
    (tmp_path / "q.tsv").write_text("query_id\tquery\n1\trunning shoes\n")
    (tmp_path / "r.tsv").write_text("query_id\tproduct_id\tgrade\n1\tp1\t3\n1\tp2\t1\n")
    assert read_queries(tmp_path / "q.tsv") == {"1": "running shoes"}
    assert read_qrels(tmp_path / "r.tsv") == {"1": {"p1": 3.0, "p2": 1.0}}
    (tmp_path / "bad.tsv").write_text("query_id\tproduct_id\tgrade\n1\tp1\thigh\n")
    with pytest.raises(CatalogueError, match="line 2"):
        read_qrels(tmp_path / "bad.tsv")
    (tmp_path / "nohead.tsv").write_text("1\tp1\t3\n")
    with pytest.raises(CatalogueError, match="header"):
        read_qrels(tmp_path / "nohead.tsv")


def test_fractional_grades_are_not_truncated() -> None:
    """homedepot's mean ratings (1.33, 2.67, ...): ranx keeps integers, so gains must be scaled, not cut."""
    qrels = {"q": {"a": 1.0, "b": 2.67, "c": 1.33, "d": 2.33}}
    # gains 0, 1.67, 0.33, 1.33; returned order a, c, b, d
    dcg = 0.0 + 0.33 / math.log2(3) + 1.67 / math.log2(4) + 1.33 / math.log2(5)
    ideal = 1.67 + 1.33 / math.log2(3) + 0.33 / math.log2(4)
    scores = evaluate({"q": ["a", "c", "b", "d"]}, qrels)
    assert scores.ndcg_at_10 == pytest.approx(dcg / ideal, abs=1e-3)
    # recall: the top third of the range 1..3 is 2.33 and above, as DATA.md says; b and d both count
    assert evaluate({"q": ["b"]}, qrels).recall_at_100 == pytest.approx(0.5)
