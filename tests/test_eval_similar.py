"""The similar-items metric: grades from shared attributes, precision@10 and nDCG@10, checked by hand
on a six-product catalogue, and run through the engine on it (hash encoder)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from recsys.build.pipeline import build_index
from recsys.catalogue import Product
from recsys.errors import InvalidRequestError
from recsys.evaluation.similar import (
    Grader,
    evaluate_similar,
    field_value,
    ndcg_at,
    parse_fields,
    precision_at,
    sample_ids,
)
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.settings import Settings

ROWS = [  # (id, category, gender, colour)
    ("a1", ["Shoes", "Boots"], "Women", "black"),
    ("a2", ["Shoes", "Boots"], "women", "Black"),
    ("a3", ["Shoes", "Boots"], "Women", "brown"),
    ("a4", ["Shoes", "Boots"], "Men", "black"),
    ("a5", ["Clothing", "Jackets"], "Women", "black"),
    ("a6", ["Clothing", "Jackets"], "Women", "BLACK"),
]
TINY = [
    Product(id=pid, title=f"{pid} {cat[-1]}", category=tuple(cat), attributes={"gender": g, "colour": c})
    for pid, cat, g, c in ROWS
]


def test_field_values() -> None:
    product = Product(
        id="p",
        title="T",
        brand="Acme",
        category=("Shoes", "Boots", "Ankle Boots"),
        attributes={"Colour": " Black ", "features": ["Waterproof", "hood"], "size": 42},
    )
    assert field_value(product, "category") == "ankle boots"
    assert field_value(product, "category[0]") == "shoes"
    assert field_value(product, "category[-2]") == "boots"
    assert field_value(product, "category[3]") is None
    assert field_value(product, "brand") == "acme"
    assert field_value(product, "colour") == "black"  # attribute names compare case-insensitively too
    assert field_value(product, "features") == "hood|waterproof"
    assert field_value(product, "size") == "42"
    assert field_value(product, "gender") is None
    assert parse_fields(" category, gender ") == ("category", "gender")
    with pytest.raises(InvalidRequestError):
        parse_fields(",")


def test_grades_and_ideal_grades() -> None:
    grader = Grader(TINY, ["category", "gender"], "colour")
    assert grader.grade("a1", "a2") == 2  # same leaf, gender and colour, whatever the case
    assert grader.grade("a1", "a3") == 1  # another colour
    assert grader.grade("a1", "a4") == 0  # another gender
    assert grader.grade("a1", "a5") == 0  # another category
    assert grader.ideal("a1") == [2, 1]
    assert grader.ideal("a3") == [1, 1]
    assert grader.ideal("a5") == [2]
    assert grader.ideal("a4") == [] and not grader.eligible("a4")
    with pytest.raises(InvalidRequestError, match="material"):
        Grader(TINY, ["category", "material"])


def test_metric_values_by_hand() -> None:
    assert precision_at([2, 0, 1]) == pytest.approx(0.2)  # two of the ten
    assert ndcg_at([0, 0], []) == 0.0
    rankings = {
        "a1": ["a4", "a3", "a5", "a2", "a6"],  # grades 0 1 0 2 0
        "a2": ["a1", "a3", "a4", "a5", "a6"],  # grades 2 1 0 0 0: ideal
        "a3": ["a5", "a6", "a4", "a1", "a2"],  # grades 0 0 0 1 1
        "a5": ["a6", "a1", "a2", "a3", "a4"],  # grades 2 0 0 0 0: ideal
        "a6": ["a1", "a2", "a3", "a4", "a5"],  # grades 0 0 0 0 2
    }
    grader = Grader(TINY, ["category", "gender"], "colour")
    scores = evaluate_similar(lambda pid: rankings[pid], grader, [p.id for p in TINY], sample=100)

    ndcg = {
        "a1": (1 / math.log2(3) + 2 / math.log2(5)) / (2 + 1 / math.log2(3)),
        "a2": 1.0,
        "a3": (1 / math.log2(5) + 1 / math.log2(6)) / (1 + 1 / math.log2(3)),
        "a5": 1.0,
        "a6": (2 / math.log2(6)) / 2,
    }
    precision = {"a1": 0.2, "a2": 0.2, "a3": 0.2, "a5": 0.1, "a6": 0.1}
    assert scores.products == 5 and scores.ineligible == 1  # a4: no other boot for men
    assert set(scores.per_product) == set(ndcg)
    for pid, expected in ndcg.items():
        assert scores.per_product[pid].ndcg == pytest.approx(expected)
    assert scores.precision_at_10 == pytest.approx(sum(precision.values()) / 5)  # 0.16
    assert scores.ndcg_at_10 == pytest.approx(sum(ndcg.values()) / 5)
    assert scores.to_dict()["precision@10"] == 0.16


def test_the_sample_is_fixed_by_its_seed() -> None:
    ids = [f"p{i}" for i in range(100)]
    first = sample_ids(ids, 10, seed=0)
    assert first == sample_ids(ids, 10, seed=0) and len(set(first)) == 10
    assert first != sample_ids(ids, 10, seed=1)
    assert sample_ids(ids, 500, seed=0) == ids
    with pytest.raises(InvalidRequestError, match="at least 1"):
        sample_ids(ids, 0, seed=0)


def test_on_a_tiny_built_catalogue(
    settings: Settings, encoder: Encoder, template: Template, tmp_path: Path
) -> None:
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in TINY), encoding="utf-8")
    build_index(path, settings=settings, encoder=encoder, template=template)
    engine = Engine(settings, encoder, template, IndexStore(settings.index_dir))
    grader = Grader(TINY, ["category", "gender"], "colour")

    def neighbours(pid: str) -> list[str]:
        return [str(r["id"]) for r in engine.similar(pid, k=10).to_list()]

    scores = evaluate_similar(neighbours, grader, [p.id for p in TINY], sample=1000, seed=0)
    # Every product's ten nearest are all five others, so precision does not depend on their order.
    for pid, item in scores.per_product.items():
        assert sorted(item.neighbours) == sorted(p.id for p in TINY if p.id != pid)
    assert scores.precision_at_10 == pytest.approx(0.16)
    assert 0.0 < scores.ndcg_at_10 <= 1.0
    assert (scores.products, scores.ineligible) == (5, 1)
