"""Search, similar items, recommendations and filters on the fixture catalogue's index."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.engine import Engine
from recsys.errors import InvalidRequestError, ProductNotFoundError
from recsys.evaluation import evaluate, read_qrels, read_queries
from recsys.filters import Filters
from recsys.vectors import exact_top
from tests.conftest import FIXTURES


def test_search_quality_is_far_above_random(full_engine: Engine) -> None:
    queries = read_queries(FIXTURES / "queries.tsv")
    qrels = read_qrels(FIXTURES / "qrels.tsv")
    runs = {q: [r["id"] for r in full_engine.search(text, k=100).to_list()] for q, text in queries.items()}
    ours = evaluate(runs, qrels)
    ids = [p["id"] for p in full_engine.index.products]
    rng = np.random.default_rng(0)
    random = evaluate({q: list(rng.choice(ids, 100, replace=False)) for q in queries}, qrels)
    assert ours.ndcg_at_10 >= 0.6, ours
    assert ours.ndcg_at_10 >= random.ndcg_at_10 + 0.4, (ours, random)
    assert ours.recall_at_100 >= 0.7, ours


def test_search_results_carry_product_fields(full_engine: Engine) -> None:
    results = full_engine.search("wireless headphones", k=5)
    items = results.to_list()
    assert len(items) == 5 and results.version == full_engine.index.version
    assert all({"id", "score", "title"} <= set(item) for item in items)
    assert "headphones" in items[0]["title"].lower()
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)


def test_offset_pages_through_the_same_ranking(full_engine: Engine) -> None:
    whole = [r["id"] for r in full_engine.search("running shoes", k=20).to_list()]
    page = [r["id"] for r in full_engine.search("running shoes", k=10, offset=10).to_list()]
    assert page == whole[10:20]


def test_similar_never_returns_the_product_itself(full_engine: Engine) -> None:
    product = full_engine.index.products[0]
    results = full_engine.similar(product["id"], k=10).to_list()
    assert len(results) == 10
    assert product["id"] not in {r["id"] for r in results}
    assert results[0]["category"][:2] == product["category"][:2]


def test_colour_variants_are_each_others_nearest(full_engine: Engine) -> None:
    # The generator makes p-00109, p-00216 and p-00815 colour variants of one duvet cover.
    neighbours = [r["id"] for r in full_engine.similar("p-00109", k=3).to_list()]
    assert neighbours[0] in {"p-00216", "p-00815"}


def test_recommend_from_a_cart(full_engine: Engine) -> None:
    products = full_engine.index.products
    shoes = [p["id"] for p in products if p.get("category", [""])[0] == "Footwear"][:3]
    other = next(p["id"] for p in products if p.get("category", [""])[0] == "Electronics")
    results = full_engine.recommend(shoes, [other], k=10).to_list()
    returned = {r["id"] for r in results}
    assert not returned & (set(shoes) | {other})
    assert sum(r["category"][0] == "Footwear" for r in results) >= 8
    with pytest.raises(ProductNotFoundError):
        full_engine.recommend(["nope"])
    with pytest.raises(InvalidRequestError, match="positive"):
        full_engine.recommend([])


def test_filters_are_applied(full_engine: Engine) -> None:
    filters = Filters.parse(
        {"category": "Footwear", "in_stock": "true", "price_max": "80", "attr.gender": "women"}
    )
    results = full_engine.search("boots", k=20, filters=filters).to_list()
    assert results
    for item in results:
        assert item["category"][0] == "Footwear" and item["in_stock"] is True and item["price"] <= 80
        assert item["attributes"]["gender"] in ("women",)
    brand = results[0]["brand"]
    assert all(
        r["brand"] == brand
        for r in full_engine.search("boots", filters=Filters.parse({"brand": brand.upper()})).to_list()
    )
    assert full_engine.search("boots", filters=Filters.parse({"brand": "No Such Brand"})).to_list() == []


@pytest.mark.parametrize(
    "raw, param",
    [
        ({"colour": "red"}, "colour"),
        ({"price_min": "-1"}, "price_min"),
        ({"price_max": "x"}, "price_max"),
        ({"in_stock": "maybe"}, "in_stock"),
        ({"price_min": "9", "price_max": "3"}, "price_min"),
        ({"attr.colour": ""}, "attr.colour"),
    ],
)
def test_bad_filters_name_the_parameter(raw: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Filters.parse(raw)
    assert caught.value.param == param


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"query": "", "k": 10}, "q"),
        ({"query": "x" * 600, "k": 10}, "q"),
        ({"query": "a", "k": 0}, "k"),
        ({"query": "a", "k": 101}, "k"),
        ({"query": "a", "k": 10, "offset": -1}, "offset"),
    ],
)
def test_bad_search_requests_name_the_parameter(full_engine: Engine, kwargs: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        full_engine.search(**kwargs)
    assert caught.value.param == param


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 1.0])
@pytest.mark.parametrize("space_name", ["search", "similar"])
def test_filtered_recall_at_every_selectivity(
    full_engine: Engine, selectivity: float, space_name: str
) -> None:
    """Recall@10 against exact filtered search ≥ 0.95 through the exact, over-fetch and Annoy paths."""
    index = full_engine.index
    space = index.spaces[space_name]
    size = len(index)
    rng = np.random.default_rng(int(selectivity * 1000))
    queries = full_engine.encoder.encode_queries(
        [full_engine.template.render_query(q) for q in read_queries(FIXTURES / "queries.tsv").values()]
    )
    hits = total = 0
    for query in queries:
        mask = np.zeros(size, dtype=bool)
        mask[rng.choice(size, max(1, round(size * selectivity)), replace=False)] = True
        truth = set(exact_top(np.asarray(space.vectors), query, 10, np.flatnonzero(mask))[0].tolist())
        # A small exact_fraction forces the over-fetch path for the broad filters.
        for fraction in (0.05, 0.25):
            found = set(space.top(query, 10, mask, exact_fraction=fraction)[0].tolist())
            assert all(mask[r] for r in found)
            hits += len(truth & found)
            total += len(truth)
    assert hits / total >= 0.95
    if selectivity == 1.0:
        unfiltered = [set(space.top(q, 10)[0].tolist()) for q in queries]
        truth_all = [set(exact_top(np.asarray(space.vectors), q, 10)[0].tolist()) for q in queries]
        recall = sum(len(a & b) for a, b in zip(unfiltered, truth_all, strict=True)) / (10 * len(queries))
        assert recall >= 0.95
