"""Search, similar items, recommendations and filters on the fixture catalogue's index.

Quality (what the real model finds) runs on ``model_engine``; the mechanics on the hash encoder.
"""

from __future__ import annotations

import numpy as np
import pytest

from recsys.build.assemble import BuildResult
from recsys.errors import InvalidRequestError, ProductNotFoundError
from recsys.evaluation.metrics import evaluate, read_qrels, read_queries
from recsys.index.ann import exact_top
from recsys.index.store import IndexStore
from recsys.model.encoder import Encoder
from recsys.model.templates import Template
from recsys.query.engine import Engine
from recsys.query.filters import Filters
from recsys.query.requests import RecommendBody, SearchParams, check
from recsys.settings import Settings
from tests.conftest import FIXTURES


def test_search_quality_is_far_above_random(model_engine: Engine) -> None:
    queries = read_queries(FIXTURES / "queries.tsv")
    qrels = read_qrels(FIXTURES / "qrels.tsv")
    runs = {q: [r["id"] for r in model_engine.search(text, k=100).to_list()] for q, text in queries.items()}
    ours = evaluate(runs, qrels)
    ids = [p["id"] for p in model_engine.index.products]
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


def test_similar_items_share_type_and_colour_and_colour_variants_are_near(model_engine: Engine) -> None:
    # The generator makes p-00109, p-00216 and p-00815 colour variants of one white duvet cover. The similar
    # template puts gender and leaf category first, then the colour, then the title (measured on myntra).
    neighbours = model_engine.similar("p-00109", k=5).to_list()
    assert all(n["category"][-1] == "Duvet Covers" for n in neighbours)
    assert neighbours[0]["attributes"]["colour"] == "white"
    assert {"p-00216", "p-00815"} & {n["id"] for n in neighbours}


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


def test_filters_are_applied(full_engine: Engine) -> None:
    filters = check(
        SearchParams,
        {"q": "boots", "category": "Footwear", "in_stock": "true", "price_max": "80", "attr.gender": "women"},
    ).filters
    results = full_engine.search("boots", k=20, filters=filters).to_list()
    assert results
    for item in results:
        assert item["category"][0] == "Footwear" and item["in_stock"] is True and item["price"] <= 80
        assert item["attributes"]["gender"] in ("women",)
    brand = results[0]["brand"]
    assert all(
        r["brand"] == brand
        for r in full_engine.search("boots", filters=Filters(brand=brand.upper())).to_list()
    )
    assert full_engine.search("boots", filters=Filters(brand="No Such Brand")).to_list() == []


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
        check(SearchParams, {"q": "boots", **raw})
    assert caught.value.param == param


@pytest.mark.parametrize(
    "model, data, param",
    [
        (SearchParams, {"q": ""}, "q"),
        (SearchParams, {"q": "   "}, "q"),
        (SearchParams, {"q": "x" * 600}, "q"),
        (SearchParams, {"q": "a", "k": "0"}, "k"),
        (SearchParams, {"q": "a", "k": "101"}, "k"),
        (SearchParams, {"q": "a", "offset": "-1"}, "offset"),
        (SearchParams, {"q": "a", "colour": "red"}, "colour"),
        (RecommendBody, {"positive": []}, "positive"),
        (RecommendBody, {"positive": ["a"], "negative": ["a"]}, "negative"),
        (RecommendBody, {"positive": ["a"], "k": "5"}, "k"),
        (RecommendBody, {"positive": ["a"], "colour": "red"}, "colour"),
    ],
)
def test_bad_requests_name_the_parameter(model: type, data: dict, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parsed = check(model, data)
        parsed.filters if isinstance(parsed, SearchParams) else None
    assert caught.value.param == param
    assert param in str(caught.value)


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 1.0])
@pytest.mark.parametrize("space_name", ["search", "similar"])
def test_filtered_recall_at_every_selectivity(
    model_engine: Engine, selectivity: float, space_name: str
) -> None:
    """Recall@10 against exact filtered search ≥ 0.95 through the exact, over-fetch and Annoy paths, for
    real queries (the build tunes search_k on probes placed where the real model puts queries)."""
    index = model_engine.index
    space = index.spaces[space_name]
    size = len(index)
    rng = np.random.default_rng(int(selectivity * 1000))
    queries = model_engine.encoder.encode_queries(
        [model_engine.template.render_query(q) for q in read_queries(FIXTURES / "queries.tsv").values()]
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


def test_one_scan_of_the_dense_score_ranks_as_the_two_spaces_do(
    full_build: tuple[Settings, BuildResult], encoder: Encoder, template: Template
) -> None:
    settings, _ = full_build
    dense_only = Engine(
        settings.replace(hybrid_weight=0.0), encoder, template, IndexStore(settings.index_dir)
    )
    index = dense_only.index
    w = settings.short_vector_weight
    search, similar = index.spaces["search"].vectors, index.spaces["similar"].vectors
    assert index.manifest.dense_weight == w and index.dense is not None
    np.testing.assert_allclose(index.dense, (1 - w) * search + w * similar, atol=1e-6)
    assert index.dense_space(w + 0.1, len(index)) is None  # built for another weight: the two spaces
    assert index.dense_space(w, len(index)) is not None  # a top-n as large as the index: one scan
    for query in ("wireless headphones", "black leather boots", "duvet cover"):
        vector = dense_only.embed_query(query)
        exact = (1 - w) * (search @ vector) + w * (similar @ vector)
        expected = np.argsort(-exact, kind="stable")[:10]
        hits = dense_only.search(query, k=10).hits
        assert [h.row for h in hits] == [int(r) for r in expected], query
        np.testing.assert_allclose([h.score for h in hits], exact[expected], atol=1e-5)
